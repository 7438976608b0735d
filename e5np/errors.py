"""The errors e5np raises on bad models and inputs; each message names the file, tensor or text."""


class E5npError(Exception):
    """Base class: anything e5np refuses, with a message meant for the user."""


class UnsupportedModelError(E5npError, ValueError):
    """The config describes a model this engine does not run (another architecture or activation)."""


class ModelFileError(E5npError, ValueError):
    """A model file is missing, truncated, corrupt, or holds a tensor of the wrong name, shape or dtype."""


class ModelNotFoundError(E5npError, FileNotFoundError):
    """Neither a local folder nor a model the Hugging Face cache or Hub can provide."""


class UnencodableTextError(E5npError, ValueError):
    """A text that is not valid Unicode (a lone surrogate, which JSON's "\\ud800" can carry)."""

    def __init__(self, index: int, char: str, position: int):
        super().__init__(f"texts[{index}] is not valid Unicode: lone surrogate {char!r} at character {position}")
        self.index, self.char, self.position = index, char, position
