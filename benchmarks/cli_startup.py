"""How long ``cartnet --help`` and ``--version`` take to start, against bare Python.

The yardsticks: ``python -c pass`` (the interpreter alone) and ``import typer, rich``
(the least a Typer/Rich command line can load). The root group imports a command's
module only when that command runs, so --help should cost little more than the
second yardstick. Medians of ``--runs`` fresh processes each.

    .venv/bin/python benchmarks/cli_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    py = sys.executable
    cli = "import sys; from cartnet.cli import main; sys.argv = ['cartnet', sys.argv[1]]; main()"
    bare = median_seconds([py, "-c", "pass"], runs)
    floor = median_seconds([py, "-c", "import typer, rich.console, typer.rich_utils"], runs)
    print(f"python -c pass:           {bare:.3f} s")
    print(f"import typer and rich:    {floor:.3f} s")
    for flag in ("--version", "--help"):
        ours = median_seconds([py, "-c", cli, flag], runs)
        print(
            f"cartnet {flag:<10}        {ours:.3f} s: {ours / bare:.1f}x python -c pass, "
            f"{ours / floor:.2f}x typer+rich alone"
        )


if __name__ == "__main__":
    main()
