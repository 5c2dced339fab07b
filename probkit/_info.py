"""Environment report printed by ``probkit info``."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("jax", "jaxlib", "numpyro", "blackjax", "equinox", "optax", "diffrax")


def info() -> dict:
    """Versions of probkit's core dependencies, the JAX backend and devices."""
    import jax

    from ._version import __version__

    versions = {"probkit": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        "float64": bool(jax.config.jax_enable_x64),
    }


def format_info(report: dict) -> str:
    lines = [f"{k:>10}: {v}" for k, v in report["versions"].items()]
    lines.append(f"{'backend':>10}: {report['backend']}")
    lines.append(f"{'devices':>10}: {', '.join(report['devices'])} ({report['device_count']})")
    lines.append(f"{'float64':>10}: {'enabled' if report['float64'] else 'disabled'}")
    return "\n".join(lines)
