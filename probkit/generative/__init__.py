"""probkit.generative"""

__all__: list[str] = []
