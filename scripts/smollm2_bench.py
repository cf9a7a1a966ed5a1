"""The reference side of scripts/bench_smollm2.sh: SmolLM2-135M-Instruct's GGUF file
generating with transformers (dequantized to float32, as policy-lab holds it) or llama.cpp
(llama-cpp-python, on the file's own Q4_1/Q8_0 weights), on the CPU. The same prompt as
`cargo bench --bench lm_bench -- smollm2`: "What is 23 + 58?" in the chat template, `rows`
copies, 64 new tokens each, greedy, EOS ignored.

    bash scripts/pyref.sh scripts/smollm2_bench.py transformers [rows] [reps]
    bash scripts/pyref.sh scripts/smollm2_bench.py llama.cpp [reps]        # batch 1
    bash scripts/pyref.sh scripts/smollm2_bench.py trl [steps]

`trl`: TRL's GRPOTrainer on the same float32 weights, as `cargo bench --bench lm_bench --
smollm2-grpo` runs policy-lab: 8 chat-templated 3-digit additions x 8 completions of up to
64 new tokens at temperature 1, beta 0, one update per batch, learning rate 1e-6; the mean
step time after a warm-up step and the mean completion length (EOS ends a completion).
"""
import os
import sys
import time

CACHE = os.environ.get("POLICY_LAB_CACHE", os.path.expanduser("~/.cache/policy-lab"))
DIR = os.path.join(CACHE, "smollm2")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = [{"role": "user", "content": "What is 23 + 58?"}]
NEW = 64


def bench_transformers(rows, reps):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32).eval()
    text = tok.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]] * rows)

    def run():
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=NEW, min_new_tokens=NEW, pad_token_id=tok.pad_token_id)
        return rows * (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start)

    run()  # warm-up
    tps = [run() for _ in range(reps)]
    print(f"transformers rows={rows} new_tokens={NEW} reps={reps} tokens_per_second={sum(tps) / reps:.1f} "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")


def bench_llama_cpp(reps):
    from llama_cpp import Llama

    llm = Llama(model_path=os.path.join(DIR, FILE), n_ctx=256, n_threads=os.cpu_count(), verbose=False)
    from jinja2 import Template  # the GGUF's own template, as llama.cpp's chat handler would render it

    template = Template(llm.metadata["tokenizer.chat_template"])
    prompt = template.render(messages=QUESTION, add_generation_prompt=True)
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def run():
        llm.reset()
        start = time.perf_counter()
        n = 0
        for _ in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
            n += 1
            if n == NEW:
                break
        return n / (time.perf_counter() - start)

    run()  # warm-up
    tps = [run() for _ in range(reps)]
    print(f"llama.cpp rows=1 new_tokens={NEW} reps={reps} tokens_per_second={sum(tps) / reps:.1f} "
          f"({os.cpu_count()} threads, the file's Q4_1/Q8_0 weights)")


def bench_trl(steps):
    import random
    import re

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32)
    # `gguf_file=` dequantizes every weight to a plain float32 parameter but leaves the model
    # marked as quantized, which Trainer refuses to fine-tune; nothing of it is quantized.
    model.hf_quantizer, model.is_quantized = None, False
    rng = random.Random(0)
    problems = [(rng.randrange(1000), rng.randrange(1000)) for _ in range(8 * (steps + 2))]
    data = Dataset.from_dict({
        "prompt": [[{"role": "user", "content": f"{a}+{b}="}] for a, b in problems],
        "answer": [str(a + b) for a, b in problems],
    })

    def reward(completions, answer, **kwargs):
        # The last number in the answer is the sum: 1, else 0 (policy-lab's task scores the
        # same way).
        out = []
        for c, a in zip(completions, answer):
            numbers = re.findall(r"\d+", c[0]["content"])
            out.append(1.0 if numbers and numbers[-1] == a else 0.0)
        return out

    class Timer(TrainerCallback):
        times = []

        def on_step_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.start)

    config = GRPOConfig(
        output_dir="/tmp/trl-smollm2-grpo-bench",
        per_device_train_batch_size=64,  # completions: 8 prompts x 8 generations
        num_generations=8,
        max_completion_length=NEW,
        learning_rate=1e-6,
        beta=0.0,
        temperature=1.0,
        max_steps=steps + 1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    timer = Timer()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data,
                          processing_class=tok, callbacks=[timer])
    trainer.train()
    t = timer.times[1:]  # the first step warms up
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history
               if "completions/mean_length" in h][1:]
    print(f"trl smollm2 grpo prompts=8 generations=8 max_new_tokens={NEW} steps={len(t)} "
          f"step_seconds={sum(t) / len(t):.2f} mean_completion_length={sum(lengths) / max(len(lengths), 1):.1f} "
          f"(trl {__import__('trl').__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "transformers":
        bench_transformers(int(sys.argv[2]) if len(sys.argv) > 2 else 1, int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    elif what == "llama.cpp":
        bench_llama_cpp(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    elif what == "trl":
        bench_trl(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    else:
        sys.exit(f"smollm2_bench.py runs transformers, llama.cpp or trl, not {what}")
