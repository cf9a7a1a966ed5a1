"""The Hugging Face side of scripts/bench_lm.sh: `transformers` generation and TRL's GRPOTrainer
on the CPU, on the same GPT-2-like shape as benches/lm_bench.rs (4 layers, width 128, 4 heads,
MLP 512, context 32, the 17-token arithmetic vocabulary: pad, bos, eos, "0123456789+*= ").

    python3 scripts/hf_lm_bench.py generate [rows] [reps]
    python3 scripts/hf_lm_bench.py grpo [steps]
    HF_BENCH_DEVICE=cuda python3 scripts/hf_lm_bench.py grpo [steps]   # TRL on the GPU

Nothing is downloaded: the model is a fresh GPT2LMHeadModel (seed 0) and the tokenizer is
built here from its character list.
"""
import os
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

CHARS = "0123456789+*= "
PAD, BOS, EOS = 0, 1, 2


def model():
    torch.manual_seed(0)
    # LM_BENCH_SHAPE=layers,width,heads,vocab, as benches/lm_bench.rs reads it.
    layers, width, heads, vocab = map(
        int, os.environ.get("LM_BENCH_SHAPE", f"4,128,4,{3 + len(CHARS)}").split(",")
    )
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=32,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        n_inner=4 * width,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    return GPT2LMHeadModel(config).eval()


def encode(text):
    return [3 + CHARS.index(c) for c in text]


def bench_generate(rows, reps):
    m = model()
    ids = torch.tensor([[BOS] + encode("123+456=")] * rows)
    mask = torch.ones_like(ids)

    def run():
        start = time.perf_counter()
        with torch.no_grad():
            out = m.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                max_new_tokens=8,
                min_new_tokens=8,
                pad_token_id=PAD,
            )
        new = out.shape[1] - ids.shape[1]
        return rows * new / (time.perf_counter() - start)

    run()  # warm-up
    tps = [run() for _ in range(reps)]
    print(
        f"generate rows={rows} new_tokens=8 reps={reps} tokens_per_second={sum(tps) / reps:.0f} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )


def tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "<bos>": BOS, "<eos>": EOS}
    vocab.update({c: 3 + i for i, c in enumerate(CHARS)})
    t = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    t.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
        padding_side="left",
    )


def bench_grpo(steps):
    import random

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rng = random.Random(0)
    problems = [(rng.randrange(1000), rng.randrange(1000)) for _ in range(8 * (steps + 2))]
    data = Dataset.from_dict(
        {
            "prompt": [f"{a}+{b}=" for a, b in problems],
            "answer": [str(a + b) for a, b in problems],
        }
    )

    def reward(completions, answer, **kwargs):
        out = []
        for c, a in zip(completions, answer):
            c = c.replace(" ", "")
            out.append((1.0 if c == a else 0.0) + (0.1 if c.isdigit() else 0.0))
        return out

    class Timer(TrainerCallback):
        times = []

        def on_step_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.start)

    config = GRPOConfig(
        output_dir="/tmp/trl-grpo-bench",
        per_device_train_batch_size=64,  # completions: 8 prompts x 8 generations
        num_generations=8,
        max_completion_length=8,
        learning_rate=1e-5,
        beta=0.0,
        temperature=1.0,
        max_steps=steps + 1,
        logging_steps=1000,
        save_strategy="no",
        report_to="none",
        # HF_BENCH_DEVICE=cuda (scripts/gpu_check.sh): the GPU, otherwise the CPU.
        use_cpu=os.environ.get("HF_BENCH_DEVICE", "cpu") != "cuda",
        bf16=False,
        seed=0,
    )
    timer = Timer()
    trainer = GRPOTrainer(
        model=model().train(),
        reward_funcs=reward,
        args=config,
        train_dataset=data,
        processing_class=tokenizer(),
        callbacks=[timer],
    )
    trainer.train()
    t = timer.times[1:]  # the first step warms up
    print(
        f"trl grpo prompts=8 generations=8 max_new_tokens=8 steps={len(t)} "
        f"step_seconds={sum(t) / len(t):.4f} (trl {__import__('trl').__version__})"
    )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "generate"
    if what == "generate":
        bench_generate(int(sys.argv[2]) if len(sys.argv) > 2 else 64, int(sys.argv[3]) if len(sys.argv) > 3 else 20)
    elif what == "grpo":
        bench_grpo(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    else:
        sys.exit(f"hf_lm_bench runs generate or grpo, not {what}")
