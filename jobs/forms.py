"""Forms of the job and preset pages.

Model parameters are not Django form fields: they are rendered from each model's JSON
Schema and checked by the catalog's validator, the same one the API and the workers use.
"""

import csv
import dataclasses
import io
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict

from jobs import catalog
from jobs.engines.local import scenes
from jobs.services import SKU_MAX_LENGTH, PhotoSource

PACKSHOT = "bria-product-packshot"


# A CSV of product URLs is read whole: a few hundred lines are far below this.
CSV_MAX_BYTES = 1024 * 1024
# Pasted URLs: BATCH_MAX_ITEMS lines of long URLs fit; a paste of a whole page does not.
URLS_MAX_CHARS = 400_000


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.Field):
    """Several files under one name. Each file is checked by the job service, which
    names the one at fault, so a bad file is not a form error here."""

    widget = MultipleFileInput

    def clean(self, value: Any) -> list[UploadedFile]:
        files = value if isinstance(value, list | tuple) else [value] if value else []
        return [f for f in files if f]


class NewJobForm(forms.Form):
    image_url = forms.CharField(
        label="Product image URLs",
        required=False,
        max_length=URLS_MAX_CHARS,
        help_text="One URL per line: one line makes a job, several lines a batch.",
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "https://shop.example/photos/mug.jpg"}
        ),
    )
    csv_file = forms.FileField(
        label="or a CSV of URLs",
        required=False,
        help_text="A header row with a url column and, if you like, a sku column; commas, "
        "semicolons or tabs, as your spreadsheet saves it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    image = MultipleFileField(
        label="or upload photos",
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    model = forms.ChoiceField(label="Model")
    preset = forms.CharField(required=False)
    batch_name = forms.CharField(label="Batch name", required=False, max_length=200)
    sku = forms.CharField(
        label="SKU",
        required=False,
        max_length=SKU_MAX_LENGTH,
        help_text="Your product's code, kept with the job. For several photos, give each "
        "its own in a CSV's sku column.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        assert isinstance(field, forms.ChoiceField)
        # Every model can be chosen; the job service refuses those the engine can't run,
        # with a message that says so.
        field.choices = [(m.slug, m.title) for m in catalog.all_models()]
        engine = catalog.current_engine()
        # The packshot asks for nothing but a photo: the simplest first job.
        runnable = [m.slug for m in catalog.all_models() if m.runs_on(engine)]
        field.initial = PACKSHOT if PACKSHOT in runnable else next(iter(runnable), None)

    def clean_csv_file(self) -> list[PhotoSource]:
        upload = self.cleaned_data.get("csv_file")
        if not upload:
            return []
        name = upload.name or "the CSV"
        if upload.size is not None and upload.size > CSV_MAX_BYTES:
            raise forms.ValidationError(
                f"{name} is larger than {CSV_MAX_BYTES // 1024} KB: split it in batches."
            )
        data = upload.read(CSV_MAX_BYTES + 1)
        if data.startswith(b"PK\x03\x04"):
            raise forms.ValidationError(
                f"{name} is a spreadsheet workbook, not a CSV: save it as CSV "
                "(in Excel: File, Save as, CSV UTF-8) and choose that file."
            )
        return csv_sources(csv_text(data, name=name), name=name)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        sources = url_sources(data.get("image_url") or "")
        sources += data.get("csv_file") or []
        sources += [PhotoSource(label=f.name or "upload", upload=f) for f in data["image"]]
        if not sources:
            raise forms.ValidationError("Paste the URL of a product photo or upload one.")
        sku = (data.get("sku") or "").strip()
        if sku:
            if len(sources) > 1:
                self.add_error(
                    "sku",
                    "SKU: it names one product; for several photos, give each its SKU in a "
                    "CSV's sku column.",
                )
                return data
            sources = [dataclasses.replace(sources[0], sku=sku)]
        if all(source.problem for source in sources):
            # Nothing left to submit: the CSV's rows are named at the CSV itself.
            shown = [f"{s.label}: {s.problem}" for s in sources]
            more = f" (and {len(shown) - 5} more)" if len(shown) > 5 else ""
            self.add_error("csv_file", "; ".join(shown[:5]) + more)
            return data
        data["sources"] = sources
        return data


def url_sources(text: str) -> list[PhotoSource]:
    """One photo per non-blank line, named by its line number."""
    return [
        PhotoSource(label=f"line {number}: {line.strip()[:200]}", image_url=line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def csv_text(data: bytes, *, name: str) -> str:
    """A CSV's text: UTF-8 (with or without the byte-order mark spreadsheets write), or,
    failing that, Windows-1252, which Excel's plain "CSV" still writes in Western Europe."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as e:
        raise forms.ValidationError(f"{name}: save it as CSV UTF-8 text.") from e


# What separates a CSV's cells: a comma, or a semicolon where the comma is the decimal
# mark (Excel and LibreOffice in most of Europe), or a tab ("Unicode text").
CSV_DELIMITERS = (",", ";", "\t")


def _csv_delimiter(text: str) -> str:
    """The delimiter of the header row: the one that makes a `url` column, else the one
    that splits it into the most cells (a comma when none does)."""
    first = next((line for line in text.splitlines() if line.strip()), "")

    def cells(delimiter: str) -> list[str]:
        row = next(csv.reader([first], delimiter=delimiter), [])
        return [_header_cell(cell) for cell in row]

    for delimiter in CSV_DELIMITERS:
        if "url" in cells(delimiter):
            return delimiter
    return max(CSV_DELIMITERS, key=lambda d: len(cells(d)))


def _header_cell(cell: str) -> str:
    # "URL", " Url ", and a byte-order mark a second export pass left in front.
    return cell.replace("\ufeff", "").strip().lower()


def csv_sources(text: str, *, name: str) -> list[PhotoSource]:
    """The photos of a CSV with a header row, a `url` column and an optional `sku`
    column, separated by commas, semicolons or tabs; each is named by its row number
    as a spreadsheet shows it (the header is row 1) and the column at fault. Blank rows
    are passed over; a row without a URL or with too long a SKU is named with why."""
    delimiter = _csv_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as e:
        raise forms.ValidationError(f"{name}: line {reader.line_num}: {e}") from e
    # Blank lines above the header (some exports start with one) are passed over too.
    at = next((i for i, row in enumerate(rows) if any(cell.strip() for cell in row)), None)
    if at is None:
        raise forms.ValidationError(f"{name} is empty: give a header row and one URL a row.")
    header = [_header_cell(cell) for cell in rows[at]]
    if "url" not in header:
        raise forms.ValidationError(
            f"{name}: the header row needs a url column (and optionally sku); it has "
            f"{', '.join(repr(h) for h in header) or 'nothing'}."
        )
    url_at = header.index("url")
    sku_at = header.index("sku") if "sku" in header else None
    sources = []
    for number, row in enumerate(rows[at + 1 :], start=at + 2):
        if not any(cell.strip() for cell in row):
            continue
        url = row[url_at].strip() if url_at < len(row) else ""
        sku = row[sku_at].strip() if sku_at is not None and sku_at < len(row) else ""
        if not url:
            sources.append(PhotoSource(label=f"row {number}, column url", problem="is required"))
        elif len(sku) > SKU_MAX_LENGTH:
            sources.append(
                PhotoSource(
                    label=f"row {number}, column sku",
                    problem=f"is longer than {SKU_MAX_LENGTH} characters ({len(sku)})",
                )
            )
        else:
            label = f"row {number}, column url: {url[:200]}"
            sources.append(PhotoSource(label=label, image_url=url, sku=sku))
    return sources


def param_field_name(model: str, name: str) -> str:
    return f"param-{model}-{name}"


def params_from_post(data: QueryDict, model: str) -> dict[str, str]:
    """The parameter overrides a form posted for `model`; empty fields are not given."""
    prefix = param_field_name(model, "")
    return {
        key[len(prefix) :]: value
        for key in data
        if key.startswith(prefix) and (value := data.get(key, "")).strip() != ""
    }


class PresetForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)
    backdrop = forms.ChoiceField(
        label="Backdrop on the local engine",
        required=False,
        choices=[("", "Chosen from the prompt's words")]
        + [(b.slug, b.name) for b in scenes.BACKDROPS.values()],
        help_text="Without Segmind the product is cut out and placed on this backdrop; "
        "the prompt is kept for when the studio runs on Segmind.",
    )

    def __init__(self, *args: Any, spec: catalog.ModelSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not spec.composed_locally:
            del self.fields["backdrop"]


# The gallery's "status" filter: results (outputs of succeeded jobs) or jobs that made none.
GALLERY_STATUSES = [
    ("", "All"),
    ("succeeded", "Results only"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("waiting_for_provider", "Waiting for Segmind"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
]


class GalleryFilterForm(forms.Form):
    """The gallery's GET filters; a bad value is a field error, the others still apply."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "SKU, URL, file, preset or model"}
        ),
    )
    model = forms.ChoiceField(label="Model", required=False)
    preset = forms.TypedChoiceField(
        label="Preset",
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Preset: choose one from the list."},
    )
    batch = forms.UUIDField(
        label="Batch",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "Batch: not a batch's id."},
    )
    status = forms.ChoiceField(label="Status", required=False, choices=GALLERY_STATUSES)
    sku = forms.CharField(label="SKU", required=False, max_length=100)
    date_from = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "From: enter a date as YYYY-MM-DD."},
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "To: enter a date as YYYY-MM-DD."},
    )
    favourites = forms.BooleanField(label="Favourites only", required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(
        self, *args: Any, presets: list[tuple[str, list[tuple[int, str]]]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        model = self.fields["model"]
        preset = self.fields["preset"]
        assert isinstance(model, forms.ChoiceField) and isinstance(preset, forms.ChoiceField)
        model.choices = [("", "All models")] + [(m.slug, m.title) for m in catalog.all_models()]
        preset.choices = [("", "All presets"), *presets]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "To: must be on or after the From date.")
        return data

    @property
    def filtering(self) -> bool:
        """Whether any filter is given (the page number is not a filter)."""
        return any(self.data.get(name) for name in self.fields if name != "page")
