"""Inputs for bench/large-model-cpu.ts and bench/gpu-check.sh: a .pgtok training shard and a JSONL of
eval items (promptIds, answerIds), both tokenized with the model's own tokenizer.

  python bench/large_model_cpu.py shard --model DIR --out F.pgtok [--n 16] [--length 128]
  python bench/large_model_cpu.py items --model DIR --out F.jsonl [--n 4]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.data import write_pgtok  # noqa: E402

QA = [("what is the capital of france?", "paris"), ("what color is the sky on a clear day?", "blue"),
      ("how many legs does a spider have?", "eight"), ("who wrote hamlet?", "william shakespeare"),
      ("what gas do plants take in?", "carbon dioxide"), ("what is frozen water called?", "ice")]
PASSAGE = ("the study fine-tuned several decoder-only language models on question answering datasets and "
           "measured exact match, jaccard similarity, throughput and perplexity. ")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["shard", "items"])
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--length", type=int, default=128, help="tokens per training example (shard)")
    a = p.parse_args()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.model)
    rows = []
    for i in range(a.n):
        q, ans = QA[i % len(QA)]
        prompt = tok(f"{PASSAGE * 8}\\nquestion: {q}\\nanswer:", add_special_tokens=False)["input_ids"]
        answer = tok(f" {ans}", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append((prompt, answer))
    if a.what == "shard":
        # Prompts cut from the left to fill exactly --length tokens: every step sees the same work.
        write_pgtok(a.out, [(pr[-(a.length - len(an)):] + an, a.length - len(an)) for pr, an in rows])
    else:
        with open(a.out, "w") as f:
            for pr, an in rows:
                f.write(json.dumps({"promptIds": pr[-96:], "answerIds": an}) + "\n")


if __name__ == "__main__":
    main()
