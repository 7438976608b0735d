"""A tqdm progress bar when asked for one, and a silent stand-in otherwise."""


class _Silent:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(show: bool, total: int | None = None, initial: int = 0, unit: str = "text", desc: str = "e5np"):
    if not show:
        return _Silent()
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)
