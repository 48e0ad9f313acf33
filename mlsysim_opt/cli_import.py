"""``mlsysim-opt import-model``: a workload record from a Hugging Face config.json (a local file or
folder, or a Hub name ``org/name``), printed and optionally written as registry YAML with provenance.

Exit codes as everywhere in the CLI: 0 imported, 2 bad input (unknown family, missing fields, no
such file or repository).
"""
from __future__ import annotations

import json
from pathlib import Path

EXIT_OK = 0


def _import(args):
    from .errors import InputError
    from .hf_import import import_config, import_hub
    target = Path(args.source).expanduser()
    if target.exists():
        imported = import_config(target, args.name, dtype=args.dtype, safetensors_check=args.safetensors)
        config = target / "config.json" if target.is_dir() else target
        return imported, {"document": str(config.resolve())}, f"{config.resolve()}"
    if args.source.count("/") == 1 and not args.source.startswith((".", "/", "~")) \
            and not args.source.endswith(".json"):
        imported, hub = import_hub(args.source, args.revision, cache_dir=args.cache_dir, name=args.name,
                                   dtype=args.dtype, safetensors_check=args.safetensors)
        url = f"https://huggingface.co/{hub['repo']}/blob/{hub['revision']}/config.json"
        return imported, {"url": url}, f"{hub['repo']}@{hub['revision']}"
    raise InputError("PATH_OR_REPO", args.source, "is neither an existing config.json (or folder) nor a Hub name "
                     "'org/name'", "give a path to config.json or e.g. meta-llama/Llama-3.1-8B")


def cmd_import_model(args, console) -> int:
    from .cli import output_file
    from .hf_import import workload_yaml
    if args.write:
        output_file(args.write, "--write", ("yaml", "yml"))   # before a Hub download
    imported, where, origin = _import(args)
    record, keys = imported
    text = None
    if args.write:
        text = workload_yaml(imported, source_title=f"{record.name} model configuration (config.json, {origin})",
                             **where)
        _check_loads(text, Path(args.write).name)
        Path(args.write).write_text(text, encoding="utf-8")
    if args.json:
        data = record.model_dump(mode="json")
        data["config_keys"] = keys
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    from .cli import _table
    rows = []
    for field in ("parameters", "active_parameters", "inference_flops"):
        value = getattr(record, field)
        shown = f"{value.m_as('GFLOP'):,.2f} GFLOP" if field == "inference_flops" else f"{value:,.0f}"
        rows.append([field, shown, "computed (architecture_parameters)" if field != "inference_flops"
                     else "2 x active parameters"])
    for field, key in keys.items():
        rows.append([field, str(getattr(record, field)), key])
    _table(f"{record.name} from {origin} ({record.attention_kind}{', MoE' if record.is_moe else ''})",
           ["field", "value", "from"], rows, console)
    if args.write:
        console.print(f"wrote {args.write} (load it with load_registry({args.write!r}, kind='workloads'))")
    return EXIT_OK


def _check_loads(text: str, file_name: str) -> None:
    """The YAML must load with load_registry and leave the audit clean (in a throwaway registry)."""
    import tempfile

    from .catalog import audit_provenance, isolated, load_registry
    from .errors import MlsysimError
    with tempfile.TemporaryDirectory() as tmp, isolated():
        path = Path(tmp) / file_name
        path.write_text(text, encoding="utf-8")
        load_registry(path, kind="workloads")
        report = audit_provenance()
        mine = [p for p in report.problems if file_name in p]
        if mine:  # pragma: no cover - workload_yaml writes a source for every value
            raise MlsysimError(f"{file_name}: " + "; ".join(mine))


def register(sub, add) -> None:
    """Add ``import-model`` to ``sub`` using ``add(name, fn, help)`` (see cli.build_parser)."""
    p = add("import-model", cmd_import_model,
            "a workload record from a Hugging Face config.json (file, folder or Hub name org/name)")
    p.add_argument("source", metavar="PATH_OR_REPO", help="config.json, its folder, or a Hub name such as org/name")
    p.add_argument("--name", help="record name (default: the folder or repository name)")
    p.add_argument("--revision", help="Hub revision: branch, tag or commit (default main)")
    p.add_argument("--cache-dir", help="Hugging Face cache folder (default: the hub's own)")
    p.add_argument("--dtype", help="weights' storage type when config.json has no torch_dtype, e.g. bfloat16")
    p.add_argument("--safetensors", choices=["raise", "warn", "ignore"], default="raise",
                   help="when a model.safetensors.index.json disagrees with the computed count by more than 2%%")
    p.add_argument("--write", metavar="FILE.yaml", help="write registry YAML with provenance to this file")
