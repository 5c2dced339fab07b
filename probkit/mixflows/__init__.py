"""probkit.mixflows"""

__all__: list[str] = []
