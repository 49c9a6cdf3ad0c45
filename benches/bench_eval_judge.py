"""Benchmark: ``eval mt-bench`` judging throughput against a judge that takes 200 ms per request.

A loopback OpenAI-compatible server answers every judge request after ``--delay`` seconds; 80
questions (the Japanese MT-Bench's size: 8 categories, math/reasoning/coding reference-guided)
x 2 turns are judged from an answers file with ``--concurrency`` requests in flight, through the
real command (``run_mt_bench``: cache, prompt building, batching, writing the outputs). The
target: at most 1.5 x (requests x delay / concurrency).

    .venv/bin/python benches/bench_eval_judge.py
    .venv/bin/python benches/bench_eval_judge.py --concurrency 32 --delay 0.2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_common import git_commit, machine_info, print_header

from plamo_fast.eval import mt_bench_run as run

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
              "humanities")  # fmt: skip
PROMPTS = [
    {"name": name, "type": "single", "system_prompt": "Judge.", "output_format": "[[rating]]",
     "prompt_template": template}
    for name, template in (
        ("single-v1", "{question}\n{answer}"),
        ("single-math-v1", "{question}\n{ref_answer_1}\n{answer}"),
        ("single-v1-multi-turn", "{question_1}\n{answer_1}\n{question_2}\n{answer_2}"),
        ("single-math-v1-multi-turn",
         "{question_1}\n{ref_answer_1}\n{answer_1}\n{question_2}\n{ref_answer_2}\n{answer_2}"),
    )
]  # fmt: skip


def serve(delay: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            body = {"choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "Rating: [[7]]"}}],
                    "usage": {"completion_tokens": 4}}  # fmt: skip
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_port}/v1"


def write_inputs(folder: Path, questions: int) -> dict:
    def jsonl(name, records):
        path = folder / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    qs = [{"question_id": k, "category": CATEGORIES[k % 8], "turns": [f"Q{k}a", f"Q{k}b"]}
          for k in range(questions)]  # fmt: skip

    def answers(model):
        return [{"question_id": q["question_id"], "answer_id": str(q["question_id"]),
                 "model_id": model, "choices": [{"index": 0, "turns": ["A1", "A2"]}],
                 "tstamp": 0} for q in qs]  # fmt: skip

    return {
        "questions": jsonl("question.jsonl", qs),
        "judge_prompts": jsonl("judge_prompts.jsonl", PROMPTS),
        "references": jsonl("reference.jsonl", answers("ref")),
        "answers": jsonl("answers.jsonl", answers("model")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=80)
    parser.add_argument("--delay", type=float, default=0.2, help="Seconds per judge request.")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print_header(" ".join(["benches/bench_eval_judge.py", *sys.argv[1:]]), machine_info(),
                 {"plamo-fast": git_commit(REPO)})  # fmt: skip
    httpd, url = serve(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = write_inputs(Path(tmp), args.questions)
            judge = run.Endpoint("judge", "openai", url, concurrency=args.concurrency)
            started = time.perf_counter()
            summary = run.run_mt_bench(files["questions"], Path(tmp) / "out", judge=judge,
                                       judge_prompts=files["judge_prompts"],
                                       references=files["references"], answers=files["answers"],
                                       progress=False)  # fmt: skip
            seconds = time.perf_counter() - started
    finally:
        httpd.shutdown()
        httpd.server_close()
    requests = summary["judgements_asked"]
    ideal = requests * args.delay / args.concurrency
    ratio = summary["judge_seconds"] / ideal
    print(f"judged {requests} turns ({args.questions} questions x 2) with --concurrency "
          f"{args.concurrency}, {args.delay * 1000:.0f} ms per request")  # fmt: skip
    print(
        f"judging: {summary['judge_seconds']:.2f} s; ideal {ideal:.2f} s ({requests} x "
        f"{args.delay} s / {args.concurrency}); ratio {ratio:.2f} (target <= 1.5)"
    )
    print(f"whole command (reading, cache, judging, results, chart): {seconds:.2f} s")  # fmt: skip
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
