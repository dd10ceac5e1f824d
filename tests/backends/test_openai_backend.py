"""The openai backend: request shapes, top-k and exact class masses, error paths, resume, CLI,
and agreement with the local backend on a real llama.cpp server."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from fake_server import FakeServer, fake_distribution, fake_yes_share, free_port

from confidently.backends import load_backend
from confidently.backends.openai_backend import OpenAIBackend
from confidently.backends.replies import parse_reply
from confidently.scoring.classifier import Classifier
from confidently.errors import BackendError, ConfigError, TaskError
from confidently.workflows.score_file import score_file
from confidently.tasks.task import SENTIMENT, Label, Task

CLI = [sys.executable, "-m", "confidently.cli.__main__"]
FAST = {"max_retries": 2, "timeout": 5.0}


def backend(server: FakeServer, **options) -> OpenAIBackend:
    backend = OpenAIBackend("fake", base_url=server.url, **{**FAST, **options})
    backend.transport.backoff = 0.01  # keep retry tests quick
    return backend


# -- request shapes and class masses ----------------------------------------------------------------
def test_completions_request_and_top_k_masses(fake_server):
    clf = Classifier(model="fake", backend=backend(fake_server, endpoint="completions"))
    scores = clf.score(["I love it", "I hate it"])
    body = fake_server.requests[0]
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["logprobs"] == 20
    assert body["model"] == "fake" and "logprob_token_ids" not in body
    # No tokenizer: the task's message plus its answer suffix, sent as-is.
    prompts = {clf.prompt("I love it"), clf.prompt("I hate it")}
    assert set(fake_server.prompts()) == prompts and clf.prompt("I love it").endswith('"I love it"\nAnswer:')
    for i, text in enumerate(["I love it", "I hate it"]):
        probs = fake_distribution(clf.prompt(text))
        assert scores.mass[i, 1] == pytest.approx(probs["yes"] + probs[" Yes"])
        assert scores.probs[i, 1] == pytest.approx(fake_yes_share(clf.prompt(text)))
        returned = sum(probs.values())
        assert scores.uncovered_mass[i] == pytest.approx(1 - returned)
        assert scores.other_mass[i] == pytest.approx(returned - scores.mass[i].sum())


def test_chat_endpoint_sends_the_message_and_system_prompt(fake_server):
    task = Task("s", 'Positive? "{text}"', SENTIMENT.labels, system_prompt="Answer yes or no.")
    clf = Classifier(model="fake", task=task, backend=backend(fake_server))  # auto: chat without a tokenizer
    scores = clf.score(["great"])
    body = fake_server.requests[0]
    assert body["messages"] == [{"role": "system", "content": "Answer yes or no."},
                                {"role": "user", "content": 'Positive? "great"'}]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    assert scores.probs[0, 1] == pytest.approx(fake_yes_share('Positive? "great"'))


def test_raw_prompt_on_the_chat_endpoint_is_refused(fake_server):
    clf = Classifier(model="fake", backend=backend(fake_server, endpoint="chat"))
    with pytest.raises(BackendError, match="completions"):
        clf.next_token("Knock knock.", raw=True)


def test_identical_requests_are_answered_from_the_cache(fake_server):
    clf = Classifier(model="fake", backend=backend(fake_server))
    first = clf.score(["same", "same", "other"]).probs
    second = clf.score(["other", "same"]).probs
    assert len(fake_server.requests) == 3  # the duplicate inside the first batch, then nothing
    assert np.allclose(second, first[[2, 0]])


def test_concurrency_is_bounded(fake_server):
    fake_server.behaviour.delay = 0.05
    clf = Classifier(model="fake", backend=backend(fake_server, max_concurrency=3), batch_size=12)
    clf.score([f"text {i}" for i in range(12)])
    assert fake_server.max_in_flight == 3


def test_close_and_garbage_collection_end_the_connection_thread(fake_server):
    import gc

    client = backend(fake_server)
    client.top_tokens("hi", 2)
    thread = client.transport._runner.thread
    client.close()
    assert not thread.is_alive()
    client.top_tokens("again", 2)  # a later call starts a new one
    thread = client.transport._runner.thread
    del client
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_adapter_is_selected_by_model_name(fake_server, tmp_path):
    clf = Classifier(model="fake", backend="openai", base_url=fake_server.url, adapter=str(tmp_path / "triage"))
    clf.score(["x"])
    assert fake_server.requests[0]["model"] == "triage"


def test_api_key_comes_from_the_named_environment_variable(fake_server, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    OpenAIBackend("fake", base_url=fake_server.url, api_key_env="FAKE_KEY").top_tokens("hi", 3)
    assert fake_server.headers[0]["authorization"] == "Bearer sk-test"
    with pytest.raises(ConfigError, match="MISSING_KEY"):
        OpenAIBackend("fake", base_url=fake_server.url, api_key_env="MISSING_KEY")


@pytest.mark.parametrize("options,message", [
    ({}, "--base-url"),
    ({"base_url": "http://x/v1", "endpoint": "grpc"}, "endpoint"),
    ({"base_url": "http://x/v1", "top_logprobs": 0}, "top_logprobs"),
])
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        load_backend("openai", model="fake", **options)


def test_hidden_label_is_flagged(fake_server):
    # Labels hold 30% of the mass and a top-3 list leaves much of it unreturned.
    fake_server.behaviour.label_share = 0.3
    clf = Classifier(model="fake", backend=backend(fake_server, top_logprobs=3))
    result = clf.classify("meh", top_k=5)
    assert result.uncovered_mass > 0.1 and result.label_may_be_hidden
    assert result.to_dict()["label_may_be_hidden"] is True
    assert [t.rank for t in result.top_tokens] == [1, 2, 3, 4, 5]
    # Nearly all mass on the labels, far from a tie: nothing can hide.
    fake_server.behaviour.label_share = 0.999999
    clf = Classifier(model="fake", backend=backend(fake_server, top_logprobs=10))
    text = next(t for t in (f"sure {i}" for i in range(100)) if abs(fake_yes_share(clf.prompt(t)) - 0.5) > 0.2)
    scores = clf.score([text])
    assert scores.uncovered_mass[0] < 1e-4 and not scores.label_may_be_hidden[0]


# -- exact masses from token ids (new vLLM) -----------------------------------------------------------
def test_token_ids_give_exact_masses(fake_server, tiny_backend, tiny_model_dir):
    vocab = tuple(tiny_backend.vocabulary())
    fake_server.behaviour.token_ids, fake_server.behaviour.vocabulary = True, vocab
    clf = Classifier(model="fake", backend=backend(fake_server, tokenizer=str(tiny_model_dir), endpoint="completions"))
    scores = clf.score(["the movie was great"])
    body = fake_server.requests[0]
    verbalizer = tiny_backend.verbalizer(SENTIMENT)
    wanted = sorted(int(i) for label in verbalizer.labels for i in label.token_ids)
    assert body["logprob_token_ids"] == wanted and body["return_tokens_as_token_ids"] is True
    # The chat template was rendered here, from the tokenizer.
    assert body["prompt"].startswith("<|im_start|>user\n") and body["prompt"].endswith("<|im_start|>assistant\n")
    assert scores.uncovered_mass[0] == 0 and scores.mass[0].sum() == pytest.approx(0.9)
    assert scores.probs[0, 1] == pytest.approx(fake_yes_share(body["prompt"]))


def test_server_ignoring_token_ids_falls_back_to_top_k(fake_server, tiny_model_dir):
    clf = Classifier(model="fake", backend=backend(fake_server, tokenizer=str(tiny_model_dir), endpoint="completions"))
    scores = clf.score(["the movie was great"])
    assert "logprob_token_ids" in fake_server.requests[0]
    assert scores.uncovered_mass[0] > 0  # top-k: the unreturned mass is reported
    assert scores.probs[0, 1] == pytest.approx(fake_yes_share(fake_server.requests[0]["prompt"]))


def test_server_refusing_token_ids_falls_back_with_a_warning(fake_server, tiny_model_dir):
    fake_server.behaviour.mode, fake_server.behaviour.status = "flaky", 400
    fake_server.behaviour.failures = 1
    clf = Classifier(model="fake", backend=backend(fake_server, tokenizer=str(tiny_model_dir), endpoint="completions"))
    with pytest.warns(UserWarning, match="refused logprob_token_ids"):
        scores = clf.score(["great"])
    assert "logprob_token_ids" not in fake_server.requests[-1] and scores.uncovered_mass[0] > 0


def test_top_k_keyed_by_token_id_maps_ids_to_text(tiny_backend):
    """An older vLLM: ids keys (return_tokens_as_token_ids) but its natural top-k, not every label id."""
    from confidently.backends.replies import NextToken
    from confidently.backends.topk import masses

    verbalizer = tiny_backend.verbalizer(SENTIMENT)
    yes_id, no_id = (int(label.token_ids[0]) for label in reversed(verbalizer.labels))
    reply = NextToken({}, {yes_id: math.log(0.5), no_id: math.log(0.2), 10_000_000: math.log(0.1)})
    mass, other, uncovered = masses([reply], verbalizer)
    assert mass[0].tolist() == pytest.approx([0.2, 0.5])
    assert other[0] == pytest.approx(0.1) and uncovered[0] == pytest.approx(0.2)


def test_multi_token_tasks_are_refused(fake_server):
    task = Task("t", "{text}", (Label("a", ("alpha",)), Label("b", ("beta",))), multi_token=True)
    with pytest.raises(TaskError, match="multi_token"):
        Classifier(model="fake", task=task, backend=backend(fake_server))


# -- reply parsing ------------------------------------------------------------------------------------
def test_parse_reply_shapes():
    completion = {"choices": [{"logprobs": {"top_logprobs": [{"yes": -0.1, "token_id:7": -3.0}]}}]}
    parsed = parse_reply(completion, "completions")
    assert parsed.logprobs == {"yes": -0.1} and parsed.ids == {7: -3.0}
    assert parsed.covered == pytest.approx(math.exp(-0.1) + math.exp(-3.0))
    chat = {"choices": [{"logprobs": {"content": [{"token": "no", "logprob": -0.5,
                                                    "top_logprobs": [{"token": "yes", "logprob": -1.0}]}]}}]}
    assert parse_reply(chat, "chat").logprobs == {"yes": -1.0, "no": -0.5}


@pytest.mark.parametrize("reply,endpoint,message", [
    ({"choices": []}, "completions", "no choices"),
    ({"choices": [{"logprobs": None}]}, "completions", "logits_all"),
    ({"choices": [{"logprobs": {"content": [{"token": "x", "logprob": 0, "top_logprobs": []}]}}]}, "chat",
     "top_logprobs must be set"),
    ({"choices": [{"logprobs": {"top_logprobs": [{"yes": "high"}]}}]}, "completions", "not a log-probability"),
    ([1, 2], "completions", "no choices"),
])
def test_parse_reply_errors(reply, endpoint, message):
    with pytest.raises(BackendError, match=message):
        parse_reply(reply, endpoint)


# -- error paths ---------------------------------------------------------------------------------------
def test_server_down_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    clf = Classifier(model="fake", backend=OpenAIBackend("fake", base_url=url, max_retries=1))
    with pytest.raises(BackendError, match=f"cannot reach the server at {url}.*2 tries"):
        clf.score(["x"])


def test_http_500_after_retries(fake_server):
    fake_server.behaviour.mode = "status"
    with pytest.raises(BackendError, match="HTTP 500 after 3 tries: made-up failure 500"):
        Classifier(model="fake", backend=backend(fake_server)).score(["x"])
    assert len(fake_server.requests) == 3


@pytest.mark.parametrize("status", [429, 503])
def test_transient_failures_are_retried(fake_server, status):
    fake_server.behaviour.mode, fake_server.behaviour.status = "flaky", status
    fake_server.behaviour.failures, fake_server.behaviour.retry_after = 2, "0"
    scores = Classifier(model="fake", backend=backend(fake_server)).score(["x"])
    assert len(fake_server.requests) == 3 and scores.mass.sum() > 0


@pytest.mark.parametrize("status,message", [(404, "check the base URL"), (401, "--api-key"),
                                            (400, "rejected the request \\(HTTP 400\\)")])
def test_client_errors_are_not_retried(fake_server, status, message):
    fake_server.behaviour.mode, fake_server.behaviour.status = "status", status
    with pytest.raises(BackendError, match=message):
        Classifier(model="fake", backend=backend(fake_server)).score(["x"])
    assert len(fake_server.requests) == 1


def test_timeout(fake_server):
    fake_server.behaviour.mode, fake_server.behaviour.delay = "slow", 2.0
    clf = Classifier(model="fake", backend=backend(fake_server, timeout=0.3, max_retries=0))
    with pytest.raises(BackendError, match="did not answer within 0.3 s"):
        clf.score(["x"])


def test_malformed_json(fake_server):
    fake_server.behaviour.mode = "not_json"
    with pytest.raises(BackendError, match="not JSON: '<html>502 Bad Gateway</html>'"):
        Classifier(model="fake", backend=backend(fake_server)).score(["x"])


def test_no_logprobs_says_which_option(fake_server):
    fake_server.behaviour.mode = "no_logprobs"
    with pytest.raises(BackendError, match="logits_all"):
        Classifier(model="fake", backend=backend(fake_server, endpoint="completions")).score(["x"])


# -- resume: a server dying halfway loses no finished rows -------------------------------------------
def test_server_dying_halfway_then_resume_requests_only_missing_rows(tmp_path):
    texts = [f"review number {i}" for i in range(20)]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "scores.parquet"
    port = free_port()
    with FakeServer(port=port) as server:
        server.behaviour.mode, server.behaviour.ok_requests = "die_after", 9
        clf = Classifier(model="fake", backend=backend(server, max_retries=1), batch_size=4)
        with pytest.raises(BackendError, match="cannot reach|HTTP 503") as error:
            score_file(clf, data, out, checkpoint_every=4, progress=False)
        assert server.url in str(error.value)
    kept = sorted((out.parent / (out.name + ".partial")).glob("chunk-*.parquet"))
    assert len(kept) == 2  # rows 0-7 were checkpointed before the server died
    with FakeServer(port=port) as server:
        clf = Classifier(model="fake", backend=backend(server), batch_size=4)
        frame = score_file(clf, data, out, checkpoint_every=4, resume=True, progress=False)
        requested = server.prompts()
    finished = {clf.prompt(t) for t in texts[:8]}
    assert len(requested) == 12 and not finished & set(requested)
    assert list(frame["text"]) == texts
    assert np.allclose(frame["raw_p_positive"], [fake_yes_share(clf.prompt(t)) for t in texts])


def test_cli_score_resume_against_a_server(tmp_path):
    data = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"line {i}" for i in range(10)]}).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    port = free_port()
    common = ["score", str(data), "--out", str(out), "--backend", "openai", "--model", "fake",
              "--base-url", f"http://127.0.0.1:{port}/v1", "--checkpoint-every", "3", "--batch-size", "3"]
    with FakeServer(port=port) as server:
        server.behaviour.mode, server.behaviour.ok_requests = "die_after", 7
        first = subprocess.run([*CLI, *common], capture_output=True, text=True, timeout=300)
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert f"http://127.0.0.1:{port}/v1" in first.stderr
    with FakeServer(port=port) as server:
        second = subprocess.run([*CLI, *common, "--resume"], capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        assert len(server.requests) == 10 - 6  # two chunks of 3 survived
    assert len(pd.read_csv(out)) == 10


# -- the real server: llama.cpp on the default model ---------------------------------------------------
def test_next_token_and_classify_cli_against_llama_cpp(llama_server):
    common = ["--backend", "openai", "--base-url", llama_server.url, "--model", llama_server.model, "--json"]
    started = time.monotonic()
    tokens = json.loads(subprocess.run([*CLI, "next-token", "Knock knock.", "--top-k", "5", *common],
                                       capture_output=True, text=True, check=True, timeout=300).stdout)
    assert [t["rank"] for t in tokens] == [1, 2, 3, 4, 5] and 0 < sum(t["prob"] for t in tokens) <= 1
    results = [json.loads(subprocess.run([*CLI, "classify", text, *common], capture_output=True, text=True,
                                         check=True, timeout=300).stdout)
               for text in ("I love this movie, it is wonderful!", "I hate this movie, it is awful.")]
    for result in results:
        assert result["uncovered_mass"] < 0.05 and len(result["top_tokens"]) == 10
        assert sum(result["mass"].values()) + result["other_mass"] + result["uncovered_mass"] == pytest.approx(1)
    # The model leans "no" (see models.md), so compare the two texts rather than read one label.
    assert results[0]["raw_probs"]["positive"] > results[1]["raw_probs"]["positive"] + 0.3
    print(f"\nCLI next-token + classify against llama.cpp: {time.monotonic() - started:.1f} s")


@pytest.mark.model
def test_llama_cpp_agrees_with_the_local_backend(llama_server, default_classifier):
    from confidently.data import generate_sentiment

    texts = list(generate_sentiment(200, seed=11).texts)
    started = time.monotonic()
    server = Classifier(model=llama_server.model, backend="openai", base_url=llama_server.url,
                        tokenizer="qwen2.5-coder-0.5b-instruct", batch_size=16)
    assert server.backend.endpoint == "completions"
    assert all(server.prompt(t) == default_classifier.prompt(t) for t in texts[:5])  # the same chat template
    remote = server.score(texts)
    server_s = time.monotonic() - started
    started = time.monotonic()
    local = default_classifier.score(texts)
    local_s = time.monotonic() - started
    diff = np.abs(remote.probs[:, 1] - local.probs[:, 1])
    agreement = float(np.mean(remote.prediction == local.prediction))
    print(f"\nllama.cpp vs transformers on {len(texts)} sentences: |dP(positive)| mean {diff.mean():.4f} "
          f"max {diff.max():.4f}; predictions agree {agreement:.1%}; uncovered mass mean "
          f"{remote.uncovered_mass.mean():.2e} max {remote.uncovered_mass.max():.2e}; "
          f"server {server_s:.1f} s, local {local_s:.1f} s")
    # Tolerance: quantized GGUF kernels vs de-quantized float32 weights (see OpenAIBackend's docstring).
    assert diff.mean() < 0.02 and diff.max() < 0.10
    assert agreement >= 0.95
    assert not remote.label_may_be_hidden.any()
    # The chat endpoint: llama.cpp applies the GGUF's copy of the same chat template itself.
    chat = Classifier(model=llama_server.model, backend="openai", base_url=llama_server.url, endpoint="chat",
                      tokenizer=None)
    # llama.cpp reuses its prompt cache between requests, which moves its numbers by up to ~0.03 from
    # run to run (measured), so the two endpoints are held to the same tolerance as the parity check.
    chat_diff = np.abs(chat.score(texts[:8]).probs - remote.probs[:8])
    assert chat_diff.mean() < 0.02 and chat_diff.max() < 0.10


def test_cli_tokenizer_renders_the_prompt_of_a_name_only_the_server_knows(fake_server, tiny_backend, tiny_model_dir):
    # "sentiment-lora" is a name only the server knows (a vLLM LoRA): without --tokenizer the prompt goes to the
    # chat endpoint for the server to render; with it, confidently renders it exactly as the local model does.
    common = ["classify", "I love it", "--backend", "openai", "--base-url", fake_server.url, "--model", "sentiment-lora",
              "--json"]
    subprocess.run([*CLI, *common], capture_output=True, text=True, check=True, timeout=300)
    assert "messages" in fake_server.requests[-1]
    subprocess.run([*CLI, *common, "--tokenizer", str(tiny_model_dir)], capture_output=True, text=True, check=True,
                   timeout=300)
    assert fake_server.requests[-1]["model"] == "sentiment-lora"
    assert fake_server.requests[-1]["prompt"] == Classifier(backend=tiny_backend).prompt("I love it")

    local = subprocess.run([*CLI, "classify", "I love it", "--model", str(tiny_model_dir), "--tokenizer",
                            str(tiny_model_dir)], capture_output=True, text=True, timeout=300)
    assert local.returncode == 2 and "Traceback" not in local.stderr
    assert "--tokenizer" in local.stderr and "applies only to a server's model" in local.stderr
