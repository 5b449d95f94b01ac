"""The main job: install cartnet into ./.venv and show the reference network with its map."""

from __future__ import annotations

from _venv import ensure_venv, run

if __name__ == "__main__":
    ensure_venv()
    run("cartnet", "network", "show", "kymriah-2020", "--scenario", "after-ema-2020")
    run(
        "cartnet",
        "network",
        "map",
        "kymriah-2020",
        "--scenario",
        "after-ema-2020",
        "-o",
        "out/kymriah-2020-map.png",
    )
    run(
        "cartnet",
        "network",
        "map",
        "kymriah-2020",
        "--scenario",
        "after-ema-2020",
        "-o",
        "out/kymriah-2020-map.html",
    )
