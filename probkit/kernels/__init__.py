"""probkit.kernels"""

__all__: list[str] = []
