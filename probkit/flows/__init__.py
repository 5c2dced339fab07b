"""probkit.flows"""

__all__: list[str] = []
