"""Pilot 2: the discriminator's five replies, greedy, base model, run 3's budgets (128 80 80 80 80), on the
generator's fenced outputs of pilot 1: plain reply vs a reply prefilled with '```python\nassert '."""
import json, sys, time, subprocess
sys.path.insert(0, "/work/main")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from prompts.templates import load_templates
from prompts import chat
from prompts.testcases import extract_tests
from datasets_build.evalplus import load_plus_rows

N = int(sys.argv[1]); out = sys.argv[2]
torch.set_num_threads(1)
path = "/root/.cache/duelcoder/models/SmolLM2-135M-Instruct"
tok = AutoTokenizer.from_pretrained(path); tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
rows = load_plus_rows("humaneval+", None, use_hub=False).rows[:N]
T = load_templates("default")
fields = [dict(problem=r.get("problem") or r["prompt"], entry_point=r["entry_point"], signature=r.get("signature", "")) for r in rows]
stages = [json.loads(l)["stages"] for l in open(f"{out}/stages.jsonl")][:N]
fence = [json.loads(l)["raw"] for l in open(f"{out}/fence.jsonl")][:N]
gen_outputs = [s + [c] for s, c in zip(stages, fence)]

def gen(texts, max_new):
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        o = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.batch_decode(o[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

budgets = [128, 80, 80, 80, 80]
t0 = time.time()
result = {}
for name, pre in [("plain", ""), ("assert", "```python\nassert ")]:
    answers = [[] for _ in fields]
    for s in range(1, 6):
        msgs = [chat.discriminator_messages(T, **f, stage_outputs=g[:s], test_outputs=a) for f, g, a in zip(fields, gen_outputs, answers)]
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) + pre for m in msgs]
        for a, t in zip(answers, gen(texts, budgets[s - 1])):
            a.append(pre + t)
    result[name] = answers
print("gen seconds", time.time() - t0, file=sys.stderr)
json.dump({"task_ids": [r["task_id"] for r in rows], **result}, open(f"{out}/disc.json", "w"))
