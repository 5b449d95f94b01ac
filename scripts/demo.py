"""The main job: install cartnet into ./.venv, show the reference network and its map,
answer the seed's question with the twin (what did the July 2020 EMA approvals of Les
Ulis and Stein do for patients?), then start the portal on demo data and print its
address and logins. Ctrl-C stops the portal."""

from __future__ import annotations

import os

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
    if os.environ.get("CARTNET_DEMO_NO_PORTAL"):
        raise SystemExit(0)
    print("\nStarting the portal on demo data (a fresh database in a temporary folder).")
    run("cartnet", "serve", "--demo", "--port", os.environ.get("CARTNET_DEMO_PORT", "8000"))
