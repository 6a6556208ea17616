"""The Files API through the official openai SDK: a file is a dataset; the guide's checks with their lines."""

from __future__ import annotations

import json

import openai
import pytest
from openai_testkit import chat_rows

from sienn_ray.services import openai_ids as ids


@pytest.fixture(scope="module")
def client(local_api):
    return local_api.client()


def test_an_uploaded_file_is_a_dataset(client, local_api):
    uploaded = client.files.create(file=("train.jsonl", chat_rows(10)), purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.purpose == "fine-tune" and uploaded.status == "processed"
    assert uploaded.filename == "train.jsonl" and uploaded.bytes == len(chat_rows(10))
    dataset = local_api.services.reader.get_dataset(ids.dataset_id_of(uploaded.id))
    assert dataset is not None and dataset.kind == "chat" and dataset.total_samples == 10
    assert client.files.retrieve(uploaded.id) == uploaded
    again = client.files.create(file=("same.jsonl", chat_rows(10)), purpose="fine-tune")
    assert again.id == uploaded.id  # the same bytes are the same dataset, so the same file
    stored = [json.loads(line) for line in client.files.content(uploaded.id).text.splitlines()]
    assert len(stored) == 10 and stored[0]["messages"][2]["content"] == "The code word for item 0 is amber."


def test_a_bad_file_is_a_bad_request_naming_every_problem_and_its_line(client, local_api):
    rows = [{"messages": [{"role": "user", "content": "Hi"}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 2}]},
            {"messages": [{"role": "robot", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}]
    before = local_api.services.reader.dataset_count()
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("bad.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()),
                            purpose="fine-tune")
    error = info.value
    assert error.status_code == 400 and error.code == "DATASET_INVALID" and error.param == "file"
    assert error.body["errors"] == ["line 1: no assistant message", "line 2: message 2 weight must be 0 or 1, got 2",
                                    "line 3: message 1 has role 'robot'; expected one of system, user, assistant"]
    assert all(problem in error.message for problem in error.body["errors"])
    assert local_api.services.reader.dataset_count() == before  # nothing stored


def test_only_the_fine_tune_purpose_is_accepted(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("x.jsonl", chat_rows(1)), purpose="assistants")
    assert info.value.param == "purpose" and "fine-tune" in info.value.message


def test_unknown_files_are_not_found(client):
    for file_id in ("file-0123456789abcdef", "file-nonsense", "ds_0123456789abcdef"):
        with pytest.raises(openai.NotFoundError) as info:
            client.files.retrieve(file_id)
        assert info.value.body["type"] == "invalid_request_error" and file_id in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-0123456789abcdef")
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-0123456789abcdef")


def test_files_are_listed_newest_first_in_pages(client):
    made = [client.files.create(file=(f"p{i}.jsonl", chat_rows(1, start=i)), purpose="fine-tune").id
            for i in range(11, 14)]
    first = client.files.list(limit=2)
    assert first.has_more and len(first.data) == 2
    everything = [f.id for f in client.files.list(limit=2)]  # the SDK follows `after` page by page
    assert everything[:3] == made[::-1] and len(everything) == len(set(everything))
    oldest_first = [f.id for f in client.files.list(order="asc")]
    assert oldest_first == everything[::-1]
    assert client.files.list(purpose="batch").data == []


def test_deleting_a_file_deletes_its_dataset(client, local_api):
    made = client.files.create(file=("gone.jsonl", chat_rows(1, start=15)), purpose="fine-tune")
    deleted = client.files.delete(made.id)
    assert deleted.id == made.id and deleted.deleted is True and deleted.object == "file"
    assert local_api.services.reader.get_dataset(ids.dataset_id_of(made.id)) is None
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)


def test_a_file_whose_content_is_gone_is_a_404_not_a_500(client):
    from sienn_ray import paths

    made = client.files.create(file=("lost.jsonl", chat_rows(1, start=17)), purpose="fine-tune")
    paths.dataset_data(ids.dataset_id_of(made.id)).unlink()  # the record stays, its data is removed out of band
    with pytest.raises(openai.NotFoundError) as info:
        client.files.content(made.id)
    assert "no longer stored" in info.value.message
