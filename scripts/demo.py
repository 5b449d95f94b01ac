"""The main job: install cartnet into ./.venv, show the reference network and its map,
then answer the seed's question with the twin: what did the July 2020 EMA approvals
of Les Ulis and Stein do for patients?"""

from __future__ import annotations

from _venv import ensure_venv, run

if __name__ == "__main__":
    ensure_venv()
    net = ["kymriah-2020", "--scenario", "after-ema-2020"]
    run("cartnet", "network", "show", *net)
    run("cartnet", "network", "map", *net, "-o", "out/kymriah-2020-map.png")
    run("cartnet", "network", "map", *net, "-o", "out/kymriah-2020-map.html")
    run(
        "cartnet", "compare", "kymriah-2020",
        "--scenario", "before-ema-2020", "--scenario", "after-ema-2020",
        "--replications", "40", "--seed", "2020",
        "--report", "out/kymriah-2020-ema.html",
    )  # fmt: skip
