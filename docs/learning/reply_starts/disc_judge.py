import json, sys, subprocess, collections
sys.path.insert(0, "/work/main")
from prompts.testcases import extract_tests
from datasets_build.evalplus import load_plus_rows
d = json.load(open("/tmp/pilot/disc.json"))
rows = {r["task_id"]: r for r in load_plus_rows("humaneval+", None, use_hub=False).rows}
for name in ("plain", "assert"):
    written = valid = tasks_valid = 0; rej = collections.Counter()
    for tid, answers in zip(d["task_ids"], d[name]):
        row = rows[tid]; known = []; any_valid = False
        for text in answers:
            p = extract_tests(text, row["entry_point"], known=known)
            rej.update(p.rejected); known += p.tests
        for t in known:
            written += 1
            prog = row["reference_solution"] + "\n" + (row["test_setup"] or "") + "\n" + t + "\n"
            try:
                ok = subprocess.run([sys.executable, "-c", prog], capture_output=True, timeout=5).returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            valid += ok; any_valid |= ok
        tasks_valid += any_valid
    print(name, "tests", written, "valid on reference", valid, "tasks with a valid test", tasks_valid, "rejected", dict(rej))
print(repr(d["assert"][0][0][:300])); print(repr(d["plain"][0][0][:300]))
