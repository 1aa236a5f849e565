"""The new-job form."""

from django import forms

from jobs import catalog


class NewJobForm(forms.Form):
    image_url = forms.URLField(
        label="Product image URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://shop.example/photos/mug.jpg"}),
    )
    image = forms.FileField(
        label="or upload a photo",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    model = forms.ChoiceField(label="Model")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        engine = catalog.current_engine()
        field = self.fields["model"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(m.slug, m.title) for m in catalog.all_models() if m.runs_on(engine)]
        if field.choices:
            field.initial = "bria-product-packshot"

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if not data.get("image_url") and not data.get("image") and not self.errors:
            raise forms.ValidationError("Paste the URL of a product photo or upload one.")
        if data.get("image_url") and data.get("image"):
            raise forms.ValidationError("Give a URL or a file, not both.")
        return data
