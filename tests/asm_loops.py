"""Reading generated assembly: the micro-kernel's inner loop, its multiply-adds and its spills.

A loop is the lines from a label to a backward jump to it; the micro-kernel's k loop is an
innermost one with the tile's number of multiply-adds. A spill is a load or store on the stack (x86: an
operand addressed from %rsp; AArch64: on sp or the frame pointer x29)."""

import re

X86_FMA = re.compile(r"\bvfmadd\d*ps\b")
X86_MULPS = re.compile(r"\bmulps\b")
X86_ADDPS = re.compile(r"\baddps\b")
X86_STACK = re.compile(r"\(%rsp\b")
ARM_FMA = re.compile(r"\bfmla\s+v\d+\.4s")
ARM_STACK = re.compile(r"\[(sp|x29)\b")
LABEL = re.compile(r"^\s*(\.?L\w+|\.LBB\w+):")
JUMP = re.compile(r"^\s*(j\w+|b\.\w+|b|cbnz|cbz|tbnz|tbz)\s+(?:[^,]*,\s*)*?(\.?L\w+|\.LBB\w+)\s*$")


def loops(asm: str) -> list[list[str]]:
    """Every innermost loop body: the lines from a label to a backward jump to it, holding no
    other such range."""
    lines = asm.splitlines()
    where, spans = {}, []
    for i, line in enumerate(lines):
        label = LABEL.match(line)
        if label:
            where[label.group(1)] = i
        jump = JUMP.match(line)
        if jump and jump.group(2) in where:
            spans.append((where[jump.group(2)], i))
    innermost = [(a, b) for a, b in spans if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in spans)]
    return [lines[a:b + 1] for a, b in innermost]


def tile_loops(asm: str, per_k: int, fma=X86_FMA) -> list[list[str]]:
    """The register tile's k loops: the innermost loops with exactly its ``per_k`` multiply-adds
    (a kernel may inline the tile more than once; the softmax's exp has loops of its own)."""
    return [body for body in loops(asm) if count(fma, body) == per_k]


def count(pattern, lines) -> int:
    return sum(bool(pattern.search(line)) for line in lines)
