"""peftgrid trainer: PEFT fine-tuning and ONNX export behind a JSON-spec CLI (docs/contracts.md)."""
