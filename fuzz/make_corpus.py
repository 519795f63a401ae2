#!/usr/bin/env python3
"""Writes fuzz/corpus/<harness>/ (the committed seeds, < 1 MB in all) from the real inputs the project reads:
the Llama-3 tokenizer and its chat template in ../shared/data, MInference's head config, the shapes of the
built-in models and the request bodies of the serve tests. GGUF and safetensors seeds are small files written
here byte by byte, with the keys and tensor types of the real GGUFs in .models/ but a small vocab, so that a
mutation reaches the parsers' later stages. Run from the repository root: python3 fuzz/make_corpus.py"""
import json
import os
import random
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "fuzz", "corpus")
rng = random.Random(15)


def put(harness, name, data):
    os.makedirs(os.path.join(OUT, harness), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, harness, name), "wb") as f:
        f.write(data)


# ---- GGUF -------------------------------------------------------------------------------------------------
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gvalue(v):
    if isinstance(v, bool):
        return struct.pack("<IB", 7, int(v))
    if isinstance(v, int):
        return struct.pack("<Ii", 5, v) if v < 2**31 else struct.pack("<IQ", 10, v)
    if isinstance(v, float):
        return struct.pack("<If", 6, v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + gstr(v)
    kind = v[0]
    if isinstance(kind, str):
        return struct.pack("<IIQ", 9, 8, len(v)) + b"".join(gstr(x) for x in v)
    if isinstance(kind, float):
        return struct.pack("<IIQ", 9, 6, len(v)) + b"".join(struct.pack("<f", x) for x in v)
    return struct.pack("<IIQ", 9, 5, len(v)) + b"".join(struct.pack("<i", x) for x in v)


# type code -> (block elements, block bytes): F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K, BF16
GGML_TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
              12: (256, 144), 14: (256, 210), 30: (1, 2)}


def byte_level_vocab():
    """The byte tokens of newline and printable ASCII in GPT-2's byte-to-unicode spelling (newline "Ċ", space
    "Ġ"), a few merges, ChatML and Llama-3 specials: small, since every mutation parses the whole vocab."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    tokens = [chars[b] for b in [0x0A] + list(range(0x20, 0x7F))]
    merges = ["Ġ t", "Ġ a", "h e", "Ġt he", "i n", "Ġ 1", "1 2"]
    tokens += [m.replace(" ", "") for m in merges]
    tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>",
               "<|start_header_id|>", "<|end_header_id|>"]
    types = [1] * (len(tokens) - 7) + [3] * 7
    return tokens, merges, types


def gguf(arch, pre, template, tensor_types, version=3):
    tokens, merges, types = byte_level_vocab()
    kv = {
        "general.architecture": arch, "general.name": "seed", "general.alignment": 32,
        f"{arch}.context_length": 8192, f"{arch}.embedding_length": 64, f"{arch}.block_count": 1,
        f"{arch}.feed_forward_length": 128, f"{arch}.attention.head_count": 4,
        f"{arch}.attention.head_count_kv": 2, f"{arch}.rope.freq_base": 10000.0,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5, f"{arch}.vocab_size": len(tokens),
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre, "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": len(tokens) - 7, "tokenizer.ggml.eos_token_id": len(tokens) - 5,
        "tokenizer.ggml.add_bos_token": False, "tokenizer.chat_template": template,
    }
    names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_up.weight",
             "output_norm.weight", "blk.0.attn_q.bias"]
    tensors, data = [], b""
    for i, t in enumerate(tensor_types):
        elems, nbytes = GGML_TYPES[t]
        cols = max(elems, 64)
        size = cols // elems * nbytes * 2
        tensors.append((names[i % len(names)] if i < len(names) else f"t{i}", t, [cols, 2], len(data)))
        data += bytes(rng.randrange(256) for _ in range(size))
        data += b"\0" * (-len(data) % 32)
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for k, v in kv.items():
        out += gstr(k) + gvalue(v)
    for name, t, dims, offset in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, offset)
    out += b"\0" * (-len(out) % 32)
    return out + data


def chatml_template():
    return ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}{% endif %}"
            "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def main():
    llama3_config = json.load(open(os.path.join(SHARED, "llama3-tokenizer", "tokenizer_config.json")))
    llama3_template = llama3_config["chat_template"]
    for name, blob in [
        ("smollm_q4_1.gguf", gguf("llama", "smollm", chatml_template(), [3, 0, 1, 2, 6])),
        ("qwen2_qk.gguf", gguf("qwen2", "qwen2", chatml_template(), [12, 14, 8, 7, 0, 30], version=3)),
        ("llama3_v2.gguf", gguf("llama", "llama-bpe", llama3_template, [0, 1], version=2)),
    ]:
        put("gguf", name, blob)
        put("gguf_tokenizer", name, blob)

    # ---- safetensors
    def safetensors(entries, metadata=None):
        header, data = {}, b""
        for name, dtype, shape, esize in entries:
            n = esize
            for d in shape:
                n *= d
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
            data += bytes(rng.randrange(256) for _ in range(n))
        if metadata:
            header["__metadata__"] = metadata
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        return struct.pack("<Q", len(h)) + h + data
    put("safetensors", "qkv.safetensors",
        safetensors([("q", "BF16", [1, 4, 8, 16], 2), ("k", "BF16", [1, 2, 8, 16], 2),
                     ("v", "F16", [1, 2, 8, 16], 2)], {"format": "pt"}))
    put("safetensors", "scalar_f32.safetensors", safetensors([("x", "F32", [], 4), ("e", "I32", [0], 4)]))

    # ---- tokenizer.json: the Llama-3 tokenizer with its vocab cut to the byte tokens of printable ASCII, space
    # ("Ġ") and newline ("Ċ"), its first 40 merges among them and what they make (ids renumbered), and the
    # specials of its chat template: small, since every mutation parses all of it. The second seed appends a NUL
    # and the parts of tokenizer_config.json the loader reads.
    full = json.load(open(os.path.join(SHARED, "llama3-tokenizer", "tokenizer.json")))
    by_id = sorted(full["model"]["vocab"].items(), key=lambda kv: kv[1])
    kept = [t for t, i in by_id if i < 94] + ["Ġ", "Ċ"]
    merges = []
    for m in full["model"]["merges"]:
        left, right = m.split(" ")
        if len(merges) < 40 and left in kept and right in kept and left + right not in kept:
            merges.append(m)
            kept.append(left + right)
    full["model"]["vocab"] = {t: i for i, t in enumerate(kept)}
    full["model"]["merges"] = merges
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    full["added_tokens"] = [t for t in full["added_tokens"] if t["content"] in specials]
    renumber = {t["id"]: len(kept) + k for k, t in enumerate(full["added_tokens"])}
    for t in full["added_tokens"]:
        t["id"] = renumber[t["id"]]
    for t in full["post_processor"]["processors"][1]["special_tokens"].values():
        t["ids"] = [renumber[i] for i in t["ids"]]
    tokenizer_json = json.dumps(full, ensure_ascii=False)
    put("tokenizer_json", "llama3_cut.json", tokenizer_json)
    config = {k: llama3_config[k] for k in ("bos_token", "eos_token", "chat_template")}
    config["add_bos_token"] = True
    put("tokenizer_json", "llama3_cut_config.json",
        tokenizer_json + "\0" + json.dumps(config, ensure_ascii=False))

    # ---- chat templates: two flag bytes, the Jinja source on one line, then NUL-separated role/content
    msgs = "\0".join(["system", "Be brief.", "user", "Hello <|eot_id|> there", "assistant", "Hi", "user", "é"])
    put("chat_template", "llama3", b"\x01\x01" + llama3_template.replace("\n", " ").encode() + b"\n" + msgs.encode())
    put("chat_template", "chatml", b"\x02\x01" + chatml_template().replace("\n", " ").encode() + b"\n" + msgs.encode())
    put("chat_template", "none", b"\x00\x00\n" + msgs.encode())

    # ---- config.json: the built-in shapes (src/model/model_config.cpp)
    put("model_config", "llama31_8b.json", json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
        "vocab_size": 128256, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
        "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192}}))
    put("model_config", "qwen2.json", json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
        "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
        "tie_word_embeddings": True, "head_dim": 64, "bos_token_id": 151643, "eos_token_id": 151645}))

    # ---- head configs (ours) and MInference's (its first two layers)
    minference = json.load(open(os.path.join(SHARED, "minference", "Llama_3.1_8B_Instruct_128k_heads.json")))
    put("minference_config", "llama31_2layers.json", json.dumps(minference[:2]))
    put("head_config", "minference_2layers.json", json.dumps(minference[:2]))
    put("head_config", "ours.json", json.dumps({
        "format": "sparseaccelerate.head-config", "version": 1, "model": "smollm2-135m", "target": "0.9",
        "block_q": 128, "block_k": 64, "last_queries": 64,
        "layers": [[{"pattern": "interval-slash:1000,6096@0.95", "error": 0.01, "recall": 0.97, "density": 0.1},
                    {"pattern": "dense"}],
                   [{"pattern": "triangular:64,1024"}, {"pattern": "block-cluster:16@0.9"}]]}))

    for i, p in enumerate(["dense", "triangular:64,1024", "interval-slash:1000,6096@0.95", "block-cluster:16",
                           "block-cluster:8@0.5", "interval-slash:1,1",
                           "interval-slash:1000,256@0.95+block-cluster:512@0.99",
                           "block-cluster:512@0.99+tail:128",
                           "interval-slash:1000,256@0.95+block-cluster:512@0.99+tail:256"]):
        put("pattern", f"p{i}", p)
    for i, s in enumerate(["24GiB", "512MiB", "1.5G", "1000000", "3 KiB", "0.5TB", "7k"]):
        put("size", f"s{i}", s)

    bodies = [
        b"\x00" + b'{"model":"m","prompt":"Hi","max_tokens":8,"temperature":0,"top_p":0.5,"seed":7,'
                  b'"stop":["\\n","END"],"stream":true,"n":1,"user":"ignored","logit_bias":null}',
        b"\x00" + b'{"model":"m","prompt":["one string"],"max_tokens":null}',
        b"\x01" + b'{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":'
                  b'[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]}],"max_completion_tokens":4,'
                  b'"stop":"x"}',
        b"\x00" + b'{"model":"m","prompt":"Hi","sparse_accelerate":{"attention":"sparse",'
                  b'"pattern":"interval-slash:1000,256@0.95+block-cluster:512@0.99"}}',
    ]
    for i, b in enumerate(bodies):
        put("serve_request", f"r{i}", b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
