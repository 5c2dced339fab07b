"""probkit.ot"""

__all__: list[str] = []
