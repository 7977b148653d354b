"""Pilot: does prefilling the code stage's reply with a ```python fence stop the 135M model's copying?
Greedy, base model, run 3's budgets (16 16 16 16 128); first N HumanEval+ tasks. Writes completions for
evaluate.py --completions (solution = full program)."""
import json, sys, time, gzip
sys.path.insert(0, "/work/main")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from prompts.templates import load_templates
from prompts import chat
from prompts.parsing import extract_code
from datasets_build.evalplus import load_plus_rows

N = int(sys.argv[1]); bench = sys.argv[2]; out = sys.argv[3]
torch.set_num_threads(1)
path = "/root/.cache/duelcoder/models/SmolLM2-135M-Instruct"
tok = AutoTokenizer.from_pretrained(path); tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
rows = load_plus_rows(bench, None, use_hub=False).rows[:N]
T = load_templates("default")
fields = [dict(problem=r["problem"] if "problem" in r else r["prompt"], entry_point=r["entry_point"], signature=r.get("signature", "")) for r in rows]

def gen(texts, max_new):
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        o = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.batch_decode(o[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

def render(msgs, prefill=""):
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + prefill

budgets = [16, 16, 16, 16, 128]
t0 = time.time()
hist = [chat.generator_messages(T, **f) for f in fields]
outs = [[] for _ in fields]
for s in range(1, 5):
    texts = gen([render(h) for h in hist], budgets[s - 1])
    for i, t in enumerate(texts):
        outs[i].append(t)
    hist = [chat.generator_messages(T, **f, outputs=o) for f, o in zip(fields, outs)]
res = {}
for name, pre in [("plain", ""), ("fence", "```python\n")]:
    codes = gen([render(h, pre) for h in hist], budgets[4])
    res[name] = [pre + c for c in codes]
dmsgs = [chat.direct_messages(T, **f) for f in fields]
for name, pre in [("direct_plain", ""), ("direct_fence", "```python\n")]:
    res[name] = [pre + c for c in gen([render(m, pre) for m in dmsgs], 256)]
print("gen seconds", time.time() - t0, file=sys.stderr)
for name, texts in res.items():
    with open(f"{out}/{name}.jsonl", "w") as f:
        for r, fl, t in zip(rows, fields, texts):
            code = extract_code(t, fl["entry_point"]).code
            f.write(json.dumps({"task_id": r["task_id"], "solution": code, "raw": t}) + "\n")
with open(f"{out}/stages.jsonl", "w") as f:
    for r, o in zip(rows, outs):
        f.write(json.dumps({"task_id": r["task_id"], "stages": o}) + "\n")
