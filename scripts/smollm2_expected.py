"""What transformers makes of SmolLM2-135M-Instruct's GGUF file (scripts/get_smollm2.sh puts
it in the cache), for tests/lm_gguf.rs to match; written to tests/fixtures/smollm2/:

* expected.json: the token ids of a corpus of 1,050 strings (digits, whitespace runs, unicode,
  code, chat markup, English) from transformers and from llama.cpp (llama-cpp-python, which
  reads the file's own pre-tokenizer, `smollm`: transformers' GGUF loader ignores it), the chat-templated prompts (system message, multi-turn, user
  only) with their ids and 16 greedy tokens, and the greedy answer to "What is 23 + 58?"
  (up to 64 new tokens) that `policy-lab lm generate` must print;
* logits.f32: each prompt's last-position logits (49,152 float32 each, little-endian).

    bash scripts/get_smollm2.sh && bash scripts/pyref.sh scripts/smollm2_expected.py

transformers dequantizes the file to float32 (gguf_file=...); greedy decoding, CPU.
"""

import json
import os
import random

import numpy as np
import torch
from llama_cpp import Llama
from transformers import AutoModelForCausalLM, AutoTokenizer

CACHE = os.environ.get("POLICY_LAB_CACHE", os.path.expanduser("~/.cache/policy-lab"))
DIR = os.path.join(CACHE, "smollm2")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "smollm2")

PROMPTS = [
    [{"role": "user", "content": "What is 23 + 58?"}],
    [
        {"role": "system", "content": "You are a terse math tutor. Answer with a number."},
        {"role": "user", "content": "What is 17 * 3?"},
    ],
    [
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And another one?"},
    ],
    [{"role": "user", "content": "Write a Python function that returns the square of x."}],
]


def corpus(rng):
    words = ["the", "cat", "sat", "on", "mat", "Hello", "world", "GRPO", "policy", "gradient", "don't",
             "it's", "we'll", "they're", "I'M", "you've", "O'Neil", "naïve", "café", "über", "résumé"]
    unicode = ["中文", "日本語のテキスト", "한국어", "Привет мир", "مرحبا", "שלום", "😀", "👍🏽", "🇫🇷", "∑ᵢ xᵢ²",
               "√2 ≈ 1.414", "x ≤ y ≥ z", "e\u0301", "a\u200bb", "ﬁ", "Ω", "½ + ¼", "²³", "٣٤٥", "Ⅻ", "𝔸𝕓𝕔"]
    code = ["def f(x):\n    return x * x", "fn main() {\n    println!(\"{}\", 1 + 2);\n}", "for i in range(10):",
            "    if x != None and y >= 0:", "let v: Vec<u32> = vec![1, 2, 3];", "console.log(`a=${a}`);",
            "x += 1; y -= 2; z *= 3", "{\"key\": [1, 2.5, null]}", "#include <stdio.h>", "SELECT * FROM t WHERE a<>b;",
            "\tindented\twith\ttabs", "a->b::c<'_>", "/* comment */ // line", "lambda x: x**2 % 7"]
    markup = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<file_sep>", "<|im_start|>user\n",
              "<|im_start|>assistant\n", "<im_start>", "<|im_start", "|>"]
    spaces = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "    ", "\u00a0", "\u3000"]
    out = []
    for _ in range(200):  # digits
        kind = rng.randrange(6)
        a, b = rng.randrange(10 ** rng.randrange(1, 9)), rng.randrange(1000)
        out.append([f"{a} + {b} = {a + b}", f"{a}{b}", f"{a}.{b}", f"{a:,}", f"v{a % 10}.{b}.{a % 7}",
                    f"x{a}y{b}z"][kind])
    for _ in range(150):  # whitespace runs
        out.append("".join(rng.choice(spaces + words) for _ in range(rng.randrange(1, 8))))
    for _ in range(200):  # unicode
        out.append(rng.choice(spaces[:2]).join(rng.choice(unicode + words) for _ in range(rng.randrange(1, 5))))
    for _ in range(200):  # code
        out.append("\n".join(rng.choice(code) for _ in range(rng.randrange(1, 4))))
    for _ in range(150):  # chat markup
        parts = [rng.choice(markup + words + spaces) for _ in range(rng.randrange(1, 7))]
        out.append("".join(parts))
    for _ in range(150):  # English
        out.append(" ".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) + rng.choice([".", "?", "!", ""]))
    return out


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32)
    model.eval()
    texts = corpus(random.Random(2026))
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    vocab = Llama(model_path=os.path.join(DIR, FILE), vocab_only=True, verbose=False)
    llama_cpp = [vocab.tokenize(t.encode(), add_bos=False, special=True) for t in texts]
    prompts, logits = [], []
    for messages in PROMPTS:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        row = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits.append(model(torch.tensor([row])).logits[0, -1].numpy().astype("<f4"))
            greedy = model.generate(torch.tensor([row]), attention_mask=torch.ones(1, len(row), dtype=torch.long),
                                    max_new_tokens=16, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                    pad_token_id=tokenizer.pad_token_id)[0, len(row):]
        prompts.append({"messages": messages, "text": text, "ids": row, "greedy": greedy.tolist()})
    question = tokenizer.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True)
    row = tokenizer(question, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        answer = model.generate(torch.tensor([row]), attention_mask=torch.ones(1, len(row), dtype=torch.long),
                                max_new_tokens=64, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id)[0, len(row):]
    answer = answer.tolist()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({
            "corpus": [{"text": t, "ids": i, "llama_cpp": l} for t, i, l in zip(texts, ids, llama_cpp)],
            "prompts": prompts,
            "answer": {"question": "What is 23 + 58?", "ids": answer,
                       "text": tokenizer.decode(answer, skip_special_tokens=True)},
        }, f, ensure_ascii=False, indent=0)
    np.concatenate(logits).tofile(os.path.join(OUT, "logits.f32"))
    print("answer:", repr(tokenizer.decode(answer, skip_special_tokens=True)))


if __name__ == "__main__":
    main()
