"""probkit.pfn"""

__all__: list[str] = []
