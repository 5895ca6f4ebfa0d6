"""Batch input files: JSONL, CSV and text prompts become items with stable ids.

Malformed lines are reported with their line numbers while the other lines
still load; duplicate ids stop the run before any request.
"""

import pickle
from pathlib import Path
from typing import List

import pytest

from imageprovider.batch._input import (
    BatchInput,
    BatchItem,
    DuplicateIdError,
    InputProblem,
    item_id,
    parse_items,
    read_items,
)
from imageprovider.exceptions import ImageProviderError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def problem_lines(batch: BatchInput) -> List[int]:
    return [problem.line for problem in batch.problems]


def message_on(batch: BatchInput, line: int) -> str:
    (message,) = [problem.message for problem in batch.problems if problem.line == line]
    return message


JSONL = """\
{"id": "fox-01", "prompt": "A red fox in fresh snow, morning light", "size": "1024x1024", "quality": "high"}
{"prompt": "Watercolour map of an imaginary island", "model": "gpt-image-1", "n": 2, "background": "transparent", "output_format": "png"}

{"prompt": "Put a party hat on the cat", "images": "photos/cat.png", "input_fidelity": "high"}
{"id": "room.v2", "prompt": "Add a window to the left wall", "images": ["room.png", "window.jpg"], "mask": "room-mask.png", "output_compression": 80, "output_format": "webp"}
"""


class TestJsonl:
    def test_realistic_file(self, tmp_path: Path) -> None:
        """Every line becomes an item with typed parameters; the blank line is skipped silently."""
        batch = read_items(str(write(tmp_path, "prompts.jsonl", JSONL)))
        assert batch.problems == []
        fox, island, cat, room = batch.items
        assert fox == BatchItem(
            "fox-01", "A red fox in fresh snow, morning light", {"size": "1024x1024", "quality": "high"}, (), None, 1
        )
        assert fox.kind == "generate"
        assert island.params == {"model": "gpt-image-1", "n": 2, "background": "transparent", "output_format": "png"}
        assert island.line == 2
        assert cat.images == ("photos/cat.png",) and cat.mask is None and cat.line == 4
        assert cat.kind == "edit"
        assert room.id == "room.v2"
        assert room.images == ("room.png", "window.jpg")
        assert room.mask == "room-mask.png"
        assert room.params == {"output_compression": 80, "output_format": "webp"}
        assert room.line == 5

    def test_derived_id_is_item_id_of_the_content(self) -> None:
        (item,) = parse_items(['{"prompt": "A koi pond", "size": "1536x1024", "images": "pond.png"}'], "jsonl").items
        assert item.id == item_id("A koi pond", {"size": "1536x1024"}, ("pond.png",))
        assert len(item.id) == 16 and int(item.id, 16) >= 0

    def test_images_as_string_or_list_give_the_same_item(self) -> None:
        single = parse_items(['{"prompt": "Brighter", "images": "a.png"}'], "jsonl").items[0]
        listed = parse_items(['{"prompt": "Brighter", "images": ["a.png"]}'], "jsonl").items[0]
        assert single.images == listed.images == ("a.png",)
        assert single.id == listed.id

    def test_null_means_not_given(self) -> None:
        (item,) = parse_items(['{"prompt": "A lighthouse", "size": null, "id": null, "mask": null}'], "jsonl").items
        assert item.params == {}
        assert item.id == item_id("A lighthouse", {})

    def test_crlf_line_endings(self) -> None:
        batch = parse_items(['{"prompt": "one"}\r\n', "\r\n", '{"prompt": "two"}\r\n'], "jsonl")
        assert [(item.prompt, item.line) for item in batch.items] == [("one", 1), ("two", 3)]


class TestJsonlProblems:
    LINES = [
        '{"prompt": "A heron at dawn", "size": "1024x1024"}\n',  # 1 ok
        '{"prompt": "A heron at dusk", "sise": "1024x1024"}\n',  # 2 unknown key
        '{"prompt": "Two herons" "n": 2}\n',  # 3 bad JSON
        '["A heron", "in the rain"]\n',  # 4 not an object
        '{"size": "1024x1024"}\n',  # 5 no prompt
        '{"prompt": "A heron", "id": "../../etc/passwd"}\n',  # 6 bad id
        '{"prompt": "A crane", "id": "crane"}\n',  # 7 ok
        '{"prompt": 42}\n',  # 8 prompt not a string
        '{"prompt": "   "}\n',  # 9 empty prompt
        '{"prompt": "A stork", "images": 3}\n',  # 10 images wrong type
        '{"prompt": "A stork", "images": ["a.png", 7]}\n',  # 11 images element wrong type
        '{"prompt": "A stork", "images": "a.png", "mask": ["m.png"]}\n',  # 12 mask wrong type
        '{"prompt": "A stork", "id": 12}\n',  # 13 id wrong type
        '{"prompt": "A stork", "prompt": "An ibis"}\n',  # 14 repeated key
        '{"prompt": "A stork", "mask": "m.png"}\n',  # 15 mask without images
        '{"prompt": "A stork", "images": []}\n',  # 16 empty images
    ]

    @pytest.fixture
    def batch(self) -> BatchInput:
        return parse_items(self.LINES, "jsonl", source="herons.jsonl")

    def test_other_lines_still_load(self, batch: BatchInput) -> None:
        assert [(item.prompt, item.line) for item in batch.items] == [("A heron at dawn", 1), ("A crane", 7)]
        assert problem_lines(batch) == list(range(2, 7)) + list(range(8, 17))

    def test_every_message_starts_with_its_line(self, batch: BatchInput) -> None:
        for problem in batch.problems:
            assert isinstance(problem, InputProblem)
            assert problem.message.startswith(f"line {problem.line}: ")

    def test_unknown_key_is_named(self, batch: BatchInput) -> None:
        message = message_on(batch, 2)
        assert "unknown key 'sise'" in message
        assert "did you mean 'size'" in message

    def test_bad_json(self, batch: BatchInput) -> None:
        assert message_on(batch, 3).startswith("line 3: not valid JSON (Expecting ',' delimiter")

    def test_not_an_object(self, batch: BatchInput) -> None:
        assert "expected a JSON object" in message_on(batch, 4)
        assert "array" in message_on(batch, 4)

    def test_missing_or_bad_prompt(self, batch: BatchInput) -> None:
        assert "missing prompt" in message_on(batch, 5)
        assert "prompt must be a string" in message_on(batch, 8)
        assert "prompt is empty" in message_on(batch, 9)

    def test_bad_id(self, batch: BatchInput) -> None:
        assert "id '../../etc/passwd'" in message_on(batch, 6)
        assert "id must be a string" in message_on(batch, 13)

    def test_wrong_types_for_images_and_mask(self, batch: BatchInput) -> None:
        assert "images must be a path or a list of paths" in message_on(batch, 10)
        assert "images[1] must be a path string" in message_on(batch, 11)
        assert "mask must be a path string" in message_on(batch, 12)
        assert "mask given without images" in message_on(batch, 15)
        assert "images is empty" in message_on(batch, 16)

    def test_repeated_key_is_not_silently_overwritten(self, batch: BatchInput) -> None:
        assert "'prompt' appears more than once" in message_on(batch, 14)

    def test_all_problems_of_one_line_in_one_message(self) -> None:
        batch = parse_items(['{"promt": "A fox", "colour": "red", "id": ""}'], "jsonl")
        (problem,) = batch.problems
        assert "'promt'" in problem.message and "'colour'" in problem.message
        assert "missing prompt" in problem.message and "id is empty" in problem.message


class TestIds:
    def test_key_order_does_not_matter(self) -> None:
        first = parse_items(
            ['{"prompt": "A fox", "size": "1024x1024", "n": 2, "images": ["a.png", "b.png"]}'], "jsonl"
        ).items[0]
        second = parse_items(
            ['{"images": ["a.png", "b.png"], "n": 2, "size": "1024x1024", "prompt": "A fox"}'], "jsonl"
        ).items[0]
        assert first.id == second.id
        assert item_id("A fox", {"n": 2, "size": "1024x1024"}) == item_id("A fox", {"size": "1024x1024", "n": 2})

    def test_line_position_does_not_matter(self) -> None:
        alone = parse_items(["A fox"], "text").items[0]
        later = parse_items(["# header", "", "A badger", "A fox"], "text").items[1]
        assert later.line == 4
        assert alone.id == later.id

    def test_same_content_same_id_across_formats(self) -> None:
        from_text = parse_items(["A fox"], "text").items[0]
        from_jsonl = parse_items(['{"prompt": "A fox"}'], "jsonl").items[0]
        from_csv = parse_items(["prompt,n\n", "A fox,\n"], "csv").items[0]
        assert from_text.id == from_jsonl.id == from_csv.id
        typed_csv = parse_items(["prompt,n\n", "A fox,2\n"], "csv").items[0]
        typed_jsonl = parse_items(['{"prompt": "A fox", "n": 2}'], "jsonl").items[0]
        assert typed_csv.id == typed_jsonl.id

    def test_different_content_different_ids(self) -> None:
        ids = {
            item_id("A fox", {}),
            item_id("A fox.", {}),
            item_id("a fox", {}),
            item_id("A fox", {"n": 2}),
            item_id("A fox", {"n": "2"}),
            item_id("A fox", {"size": "1024x1024"}),
            item_id("A fox", {}, ("a.png",)),
            item_id("A fox", {}, ("a.png", "b.png")),
            item_id("A fox", {}, ("b.png", "a.png")),
            item_id("A fox", {}, ("a.png",), "mask.png"),
        }
        assert len(ids) == 10

    def test_none_parameters_are_not_given(self) -> None:
        assert item_id("A fox", {"size": None, "n": 1}) == item_id("A fox", {"n": 1})

    def test_image_paths_as_a_string(self) -> None:
        assert item_id("A fox", {}, "a.png") == item_id("A fox", {}, ["a.png"])

    def test_given_ids_are_kept(self) -> None:
        batch = parse_items(
            ['{"id": "Fox_01.final", "prompt": "A fox"}', '{"id": "badger", "prompt": "A badger"}'], "jsonl"
        )
        assert [item.id for item in batch.items] == ["Fox_01.final", "badger"]

    @pytest.mark.parametrize("ident", ["a", "A-1_b.2", "x" * 100, "-leading-dash", "1024"])
    def test_valid_ids(self, ident: str) -> None:
        assert parse_items([f'{{"prompt": "p", "id": "{ident}"}}'], "jsonl").items[0].id == ident

    @pytest.mark.parametrize(
        "ident, reason",
        [
            ("", "id is empty"),
            ("x" * 101, "at most 100"),
            (".hidden", "starts with '.'"),
            ("a/b", "'/'"),
            ("a\\\\b", "'\\\\'"),
            ("two words", "' '"),
            ("caf\u00e9", "'\u00e9'"),
            ("..", "starts with '.'"),
            ("NUL", "reserved device name"),
            ("com1.final", "reserved device name"),
        ],
    )
    def test_invalid_ids(self, ident: str, reason: str) -> None:
        batch = parse_items(['{"prompt": "ok"}', f'{{"prompt": "p", "id": "{ident}"}}'], "jsonl")
        assert len(batch.items) == 1
        assert problem_lines(batch) == [2]
        assert reason in batch.problems[0].message


class TestDuplicates:
    def test_duplicate_given_ids(self) -> None:
        lines = [
            '{"id": "fox", "prompt": "A red fox"}',
            '{"id": "badger", "prompt": "A badger"}',
            '{"id": "fox", "prompt": "A grey fox"}',
            '{"id": "badger", "prompt": "Another badger"}',
            '{"id": "fox", "prompt": "A fennec fox"}',
        ]
        with pytest.raises(DuplicateIdError) as caught:
            parse_items(lines, "jsonl", source="animals.jsonl")
        error = caught.value
        assert error.duplicates == {"fox": (1, 3, 5), "badger": (2, 4)}
        assert "animals.jsonl" in str(error)
        assert "'fox' on lines 1, 3, 5" in str(error)
        assert "'badger' on lines 2, 4" in str(error)
        assert isinstance(error, ValueError) and isinstance(error, ImageProviderError)

    def test_duplicate_derived_ids(self, tmp_path: Path) -> None:
        """The same prompt twice, with no ids, would write the same files."""
        path = write(tmp_path, "prompts.txt", "A lighthouse at night\nA harbour\n\nA lighthouse at night\n")
        with pytest.raises(DuplicateIdError) as caught:
            read_items(str(path))
        (ident,) = caught.value.duplicates
        assert ident == item_id("A lighthouse at night", {})
        assert caught.value.duplicates[ident] == (1, 4)
        assert "on lines 1, 4" in str(caught.value)
        assert str(path) in str(caught.value)

    def test_given_id_colliding_with_derived_id(self) -> None:
        derived = item_id("A fox", {})
        with pytest.raises(DuplicateIdError) as caught:
            parse_items(['{"prompt": "A fox"}', f'{{"prompt": "A badger", "id": "{derived}"}}'], "jsonl")
        assert caught.value.duplicates == {derived: (1, 2)}

    def test_ids_differing_only_in_case(self) -> None:
        """They name the same file on case-insensitive file systems."""
        with pytest.raises(DuplicateIdError) as caught:
            parse_items(['{"prompt": "a", "id": "Fox"}', '{"prompt": "b", "id": "fox"}'], "jsonl")
        assert caught.value.duplicates == {"Fox": (1, 2)}
        assert "'fox'" in str(caught.value)

    def test_same_prompt_with_different_parameters_is_fine(self) -> None:
        batch = parse_items(['{"prompt": "A fox"}', '{"prompt": "A fox", "quality": "high"}'], "jsonl")
        assert len({item.id for item in batch.items}) == 2

    def test_raised_after_parsing_everything(self, tmp_path: Path) -> None:
        """Problems on later lines do not hide the duplicate, and it names every line."""
        path = write(
            tmp_path, "p.jsonl", '{"prompt": "x"}\nnot json\n{"prompt": "x"}\n{"prompt": "y"}\n{"prompt": "x"}\n'
        )
        with pytest.raises(DuplicateIdError) as caught:
            read_items(str(path))
        assert list(caught.value.duplicates.values()) == [(1, 3, 5)]

    def test_survives_pickling(self) -> None:
        error = DuplicateIdError({"fox": [1, 3]}, "a.jsonl")
        copy = pickle.loads(pickle.dumps(error))
        assert copy.duplicates == {"fox": (1, 3)} and copy.source == "a.jsonl" and str(copy) == str(error)


CSV = (
    "id,prompt,size,n,output_compression,images,mask,quality\r\n"
    "fox,A red fox in fresh snow,1024x1024,2,,,,high\r\n"
    ',"A poster that reads ""Open, daily""\nwith a second line",1536x1024,,,,,\r\n'
    ",Merge the two photos,,1,75,a.png|b.png; c.png,,\r\n"
    ",Replace the sky,,,,sky.png,sky-mask.png,\r\n"
)


class TestCsv:
    def test_realistic_file(self, tmp_path: Path) -> None:
        batch = read_items(str(write(tmp_path, "prompts.csv", CSV)))
        assert batch.problems == []
        fox, poster, merge, sky = batch.items
        assert fox == BatchItem(
            "fox", "A red fox in fresh snow", {"size": "1024x1024", "n": 2, "quality": "high"}, (), None, 2
        )
        assert poster.prompt == 'A poster that reads "Open, daily"\nwith a second line'
        assert poster.params == {"size": "1536x1024"}
        assert poster.id == item_id(poster.prompt, {"size": "1536x1024"})
        assert merge.line == 5, "a quoted field spanning two lines moves the next row down"
        assert merge.params == {"n": 1, "output_compression": 75}
        assert merge.images == ("a.png", "b.png", "c.png")
        assert merge.kind == "edit"
        assert (sky.images, sky.mask, sky.line) == (("sky.png",), "sky-mask.png", 6)

    def test_problems_keep_their_row_numbers(self) -> None:
        lines = [
            "prompt,n,output_compression,colour\n",
            "A fox,2,,\n",  # 2 ok
            "A badger,two,,\n",  # 3 not an integer
            "A stoat,1.5,,\n",  # 4 not an integer
            "A mole,, +60 ,\n",  # 5 ok
            "A vole,,,blue\n",  # 6 unknown column
            ",3,,\n",  # 7 no prompt
            '"A "quoted" hare",1,,\n',  # 8 not valid CSV
            "A wren,1,,,surplus\n",  # 9 more fields than columns
            "A hedgehog\n",  # 10 ok: missing cells are empty
        ]
        batch = parse_items(lines, "csv")
        assert [(item.prompt, item.line) for item in batch.items] == [("A fox", 2), ("A mole", 5), ("A hedgehog", 10)]
        assert batch.items[1].params == {"output_compression": 60}
        assert problem_lines(batch) == [3, 4, 6, 7, 8, 9]
        assert "n must be an integer, got 'two'" in message_on(batch, 3)
        assert "got '1.5'" in message_on(batch, 4)
        assert "unknown column 'colour'" in message_on(batch, 6)
        assert "missing prompt" in message_on(batch, 7)
        assert "not valid CSV" in message_on(batch, 8)
        assert "5 fields" in message_on(batch, 9)

    def test_quotes_inside_an_unquoted_field_are_kept(self) -> None:
        (item,) = parse_items(["prompt,n\n", 'A sign that says "Hello",1\n'], "csv").items
        assert item.prompt == 'A sign that says "Hello"'

    def test_streaming_parameters_are_unknown(self) -> None:
        """Batch items are not streamed, so partial_images is not taken for a typed parameter."""
        batch = parse_items(["prompt,partial_images\n", "A fox,2\n"], "csv")
        assert batch.items == [] and "unknown column 'partial_images'" in batch.problems[0].message

    def test_unknown_column_left_empty_is_harmless(self) -> None:
        batch = parse_items(["prompt,notes\n", "A fox,\n"], "csv")
        assert batch.problems == [] and batch.items[0].params == {}

    def test_header_names_are_case_and_space_tolerant(self) -> None:
        batch = parse_items(["Prompt , Size\n", "A fox, 1024x1024 \n"], "csv")
        assert batch.items[0].params == {"size": "1024x1024"}

    def test_header_without_prompt_column(self) -> None:
        batch = parse_items(["text,size\n", "A fox,1024x1024\n"], "csv")
        assert batch.items == []
        assert problem_lines(batch) == [1]
        assert "no 'prompt' column" in batch.problems[0].message

    def test_header_with_repeated_column(self) -> None:
        batch = parse_items(["prompt,size,size\n", "A fox,1024x1024,1536x1024\n"], "csv")
        assert batch.items == [] and "repeats column 'size'" in batch.problems[0].message

    def test_blank_rows_are_skipped(self) -> None:
        batch = parse_items(["\n", "prompt,size\n", ",\n", "A fox,\n", "\n"], "csv")
        assert batch.problems == []
        assert [(item.prompt, item.line) for item in batch.items] == [("A fox", 4)]

    def test_unclosed_quote_is_reported_not_swallowed(self) -> None:
        batch = parse_items(["prompt\n", "A fox\n", '"A badger\n', "A stoat\n"], "csv")
        assert [item.prompt for item in batch.items] == ["A fox"]
        assert problem_lines(batch) == [3]
        assert "not valid CSV" in batch.problems[0].message


class TestText:
    def test_realistic_file(self, tmp_path: Path) -> None:
        text = (
            "# Spring catalogue\n"
            "A ceramic mug on a wooden table, soft daylight\n"
            "\n"
            "   \n"
            "  # an indented comment\n"
            "  A linen shirt on a hanger  \n"
            "A straw hat, studio lighting\r\n"
        )
        batch = read_items(str(write(tmp_path, "catalogue.txt", text)))
        assert batch.problems == []
        assert [(item.prompt, item.line) for item in batch.items] == [
            ("A ceramic mug on a wooden table, soft daylight", 2),
            ("A linen shirt on a hanger", 6),
            ("A straw hat, studio lighting", 7),
        ]
        assert all(item.params == {} and item.kind == "generate" for item in batch.items)

    def test_json_looking_line_is_just_a_prompt(self) -> None:
        (item,) = parse_items(['{"prompt": "x"}'], "text").items
        assert item.prompt == '{"prompt": "x"}'


class TestReading:
    @pytest.mark.parametrize(
        "name, expected",
        [
            ("p.jsonl", "jsonl"),
            ("p.NDJSON", "jsonl"),
            ("p.csv", "csv"),
            ("p.CSV", "csv"),
            ("p.txt", "text"),
            ("prompts", "text"),
            ("p.json", "text"),
        ],
    )
    def test_format_from_extension(self, tmp_path: Path, name: str, expected: str) -> None:
        # The same bytes read three different ways tell which format was picked.
        path = write(tmp_path, name, 'prompt\n"A fox"\n')
        batch = read_items(str(path))
        if expected == "csv":
            assert [item.prompt for item in batch.items] == ["A fox"]
        elif expected == "jsonl":
            assert batch.items == [] and problem_lines(batch) == [1, 2]
        else:
            assert [item.prompt for item in batch.items] == ["prompt", '"A fox"']

    def test_explicit_format_wins_over_extension(self, tmp_path: Path) -> None:
        path = write(tmp_path, "prompts.txt", '{"prompt": "A fox", "n": 2}\n')
        assert read_items(str(path), format="jsonl").items[0].params == {"n": 2}

    def test_path_object(self, tmp_path: Path) -> None:
        assert read_items(write(tmp_path, "p.txt", "A fox\n")).items[0].prompt == "A fox"

    def test_unknown_format(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="xml"):
            read_items(str(write(tmp_path, "p.txt", "A fox\n")), format="xml")
        with pytest.raises(ValueError, match="yaml"):
            parse_items(["A fox"], "yaml")

    @pytest.mark.parametrize(
        "name, text",
        [
            ("p.txt", "A caf\u00e9 terrace\n"),
            ("p.jsonl", '{"prompt": "A caf\u00e9 terrace"}\n'),
            ("p.csv", "prompt\nA caf\u00e9 terrace\n"),
        ],
    )
    def test_byte_order_mark_is_ignored(self, tmp_path: Path, name: str, text: str) -> None:
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        batch = read_items(str(path))
        assert batch.problems == []
        assert [item.prompt for item in batch.items] == ["A caf\u00e9 terrace"]

    def test_byte_order_mark_in_lines_given_to_parse_items(self) -> None:
        batch = parse_items(["\ufeffprompt,size\n", "A fox,1024x1024\n"], "csv")
        assert batch.items[0].params == {"size": "1024x1024"}

    def test_non_utf8_file(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.txt"
        path.write_bytes("A fox\nA caf\u00e9 terrace\n".encode("latin-1"))
        with pytest.raises(ValueError) as caught:
            read_items(str(path))
        assert str(path) in str(caught.value)
        assert "UTF-8" in str(caught.value) and "line 2" in str(caught.value)
        assert isinstance(caught.value.__cause__, UnicodeDecodeError)

    def test_line_separator_inside_json_string_does_not_split_the_line(self, tmp_path: Path) -> None:
        path = write(tmp_path, "p.jsonl", '{"prompt": "first\u2028second"}\n{"prompt": "third"}\n')
        batch = read_items(str(path))
        assert [(item.prompt, item.line) for item in batch.items] == [("first\u2028second", 1), ("third", 2)]

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            read_items(str(tmp_path / "absent.jsonl"))


def test_runner_fails_an_item_whose_parameter_does_not_fit_its_kind_without_a_request(tmp_path):
    """input_fidelity on a generation (or style on an edit) fails that item cleanly; nothing is sent."""
    import json as json_module

    import responses as responses_module
    from helpers import API_KEY

    from imageprovider import OpenAIImageProvider
    from imageprovider.batch import run_batch

    source = tmp_path / "items.jsonl"
    source.write_text(json_module.dumps({"id": "g1", "prompt": "A fox", "input_fidelity": "high"}) + "\n")
    with responses_module.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with OpenAIImageProvider(api_key=API_KEY) as provider:
            summary = run_batch(str(source), str(tmp_path / "out"), provider=provider, concurrency=1)
        assert len(mock.calls) == 0
    assert summary.failed == 1
    assert summary.failures[0]["error_class"] == "RequestValidationError"
    assert "input_fidelity" in summary.failures[0]["message"]
