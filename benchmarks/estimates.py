"""The README's device estimates: MobileNetV2-1.0-224 estimated on each profiled device beside its
published latency, with the estimator's leave-one-out error over the calibration points.

    .venv/bin/python benchmarks/estimates.py --references   # re-measure the reference graphs' costs, then render
    .venv/bin/python benchmarks/estimates.py                # render from devices/profiles/

The calibration models (MobileNet V1, V3 Large, V3 Small) and the checked one (MobileNetV2) are
built from devices/reference_models.py at ImageNet's shape, exported to ONNX, and their graphs'
costs (MACs, bytes moved) stored in devices/profiles/reference_costs.json; the estimator fits each
device's efficiencies on the calibration models' published figures only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- estimates:begin (benchmarks/estimates.py writes this) -->", "<!-- estimates:end -->"


def measure_references() -> None:
    import torch

    from edgezoo.devices.estimate import REFERENCE_COSTS, graph_costs
    from edgezoo.devices.reference_models import CALIBRATION_MODELS, CHECK_MODELS, build

    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CALIBRATION_MODELS + CHECK_MODELS:
            path = Path(tmp) / f"{name}.onnx"
            torch.onnx.export(build(name), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)
            models[name] = {p: [[o.kind, o.macs, o.bytes] for o in graph_costs(path, p)] for p in ("fp32", "int8")}
            print(name, f"{sum(o[1] for o in models[name]['fp32']) / 1e6:.0f} M MACs", flush=True)
    REFERENCE_COSTS.write_text(json.dumps({"input": "1x3x224x224, 1000 classes", "op": ["kind", "macs", "bytes"], "models": models}) + "\n")


def render() -> str:
    from edgezoo.devices import estimate as est

    refs, ops = est.reference_costs(), est.reference_ops()
    lines = ["| device | runtime | precision | threads | published ms | estimate ms | error | plain roofline ms | fitted on | leave-one-out error (points) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in est.profile_names():
        profile = est.load_profile(name)
        for check in profile.get("check", []):
            u, basis = est.fit(profile, check["runtime"], check["precision"])
            cost = refs[check["model"]][check["precision"]]
            guess = None if u is None else est.predict(profile, check["precision"], cost, u, check["threads"])
            roof = est.roofline_ms(profile, check["precision"], ops[check["model"]][check["precision"]], check["threads"])
            loo = est.leave_one_out(profile, check["runtime"], check["precision"])
            loo_text = (f"mean {sum(abs(p['error']) for p in loo) / len(loo):.0%}, max {max(abs(p['error']) for p in loo):.0%} ({len(loo)})"
                        if loo else "none: too few points")
            said = "-" if guess is None else f"{guess:.1f}"
            error = "-" if guess is None else f"{guess / check['latency_ms'] - 1:+.0%}"
            lines.append(f"| {profile['title']} | {check['runtime']} | {check['precision']} | {check['threads']} | {check['latency_ms']} | {said} | "
                         f"{error} | {roof:.1f} | {basis} | {loo_text} |")
    return "\n".join(lines) + ("\n\nMobileNetV2-1.0-224 (1000 classes) estimated from its graph's costs and each device's profile "
                               "(devices/profiles/*.toml, every figure with its source); published: XNNPACK's end-to-end benchmarks. "
                               "The plain roofline takes the whole graph at the cores' peak MACs or full bandwidth.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", action="store_true", help="re-measure the reference graphs' costs first")
    args = parser.parse_args()
    if args.references:
        measure_references()
    from edgezoo.report import replace_block

    table = render()
    README.write_text(replace_block(README.read_text(), BEGIN, END, table))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
