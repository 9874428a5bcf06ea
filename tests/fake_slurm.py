"""A stand-in for the Slurm commands submitit calls (sbatch, srun, sacct, scontrol, scancel), run on this machine.

    fake_slurm.py COMMAND ARGS...      (tests put one small shell wrapper per command on PATH)

State lives in $FAKE_SLURM_DIR: ``sbatch.jsonl`` records each submission (its options and a copy of its script),
``state/<job>`` each job's (or array task's) Slurm state. sbatch answers ``Submitted batch job N`` as Slurm does and
runs the job in the background: array tasks (``--array=0-N%P``, at most P at once) get SLURM_ARRAY_JOB_ID /
SLURM_ARRAY_TASK_ID and their own SLURM_JOB_ID. srun expands the %A %a %j %t patterns of --output/--error. sacct
prints ``JobID|State|NodeList`` lines as ``sacct -o JobID,State,NodeList --parsable2 -j ID`` does.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
from pathlib import Path

DIR = Path(os.environ["FAKE_SLURM_DIR"])


def set_state(job: str, state: str) -> None:
    (DIR / "state").mkdir(parents=True, exist_ok=True)
    (DIR / "state" / job).write_text(state)


def sbatch(args):
    script = Path(args[-1])
    text = script.read_text()
    options = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", text, re.MULTILINE))
    DIR.mkdir(parents=True, exist_ok=True)
    counter = DIR / "counter"
    job = int(counter.read_text()) if counter.exists() else 1000
    array = options.get("array", "")
    n_tasks = int(re.match(r"0-(\d+)", array).group(1)) + 1 if array else 1
    counter.write_text(str(job + n_tasks + 1))
    (DIR / "scripts").mkdir(exist_ok=True)
    copy = DIR / "scripts" / f"{job}.sh"
    copy.write_text(text)
    with open(DIR / "sbatch.jsonl", "a") as f:
        f.write(json.dumps({"job": job, "options": options, "script": str(copy), "cwd": os.getcwd()}) + "\n")
    for i in range(n_tasks):
        set_state(f"{job}_{i}" if array else str(job), "PENDING")
    subprocess.Popen([sys.executable, __file__, "_run", str(job), str(script)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"Submitted batch job {job}")


def run_job(args):
    job, script = int(args[0]), args[1]
    record = [json.loads(line) for line in open(DIR / "sbatch.jsonl")][-1]
    assert record["job"] == job
    array = record["options"].get("array", "")
    match = re.match(r"0-(\d+)(?:%(\d+))?", array)
    tasks = range(int(match.group(1)) + 1) if match else [None]
    parallel = int(match.group(2) or len(tasks)) if match else 1

    def one(task):
        name = f"{job}_{task}" if task is not None else str(job)
        env = dict(os.environ, SLURM_JOB_ID=str(job if task is None else job + 1 + task), SLURM_NTASKS="1",
                   SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0", SLURM_JOB_NUM_NODES="1",
                   SLURM_JOB_NODELIST="localhost", SLURM_CPUS_PER_TASK=record["options"].get("cpus-per-task", "1"))
        if task is not None:
            env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(task))
        set_state(name, "RUNNING")
        code = subprocess.call(["bash", script], env=env, cwd=record["cwd"])
        set_state(name, "COMPLETED" if code == 0 else "FAILED")

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, tasks))


def srun(args):
    paths = {}
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag in ("--output", "--error"):
            paths[flag] = args.pop(0)
    env = os.environ
    subs = {"%A": env.get("SLURM_ARRAY_JOB_ID", ""), "%a": env.get("SLURM_ARRAY_TASK_ID", ""),
            "%j": env["SLURM_JOB_ID"], "%t": "0"}
    for flag, path in paths.items():
        for key, value in subs.items():
            path = path.replace(key, value)
        paths[flag] = path
    with open(paths["--output"], "a") as out, open(paths.get("--error", paths["--output"]), "a") as err:
        sys.exit(subprocess.call(args, stdout=out, stderr=err))


def sacct(args):
    jobs = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for path in sorted((DIR / "state").iterdir()):
        if path.name.split("_")[0] in jobs:
            print(f"{path.name}|{path.read_text()}|localhost")


def record_call(name, args):
    with open(DIR / f"{name}.log", "a") as f:
        f.write(" ".join(args) + "\n")


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "sbatch":
        sbatch(rest)
    elif command == "_run":
        run_job(rest)
    elif command == "srun":
        srun(rest)
    elif command == "sacct":
        sacct(rest)
    else:  # scontrol (requeue), scancel
        record_call(command, rest)
