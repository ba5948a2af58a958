"""Forms of the model-repository pages; each builds what the services take (a spec, a model)."""

import json

from django import forms
from django.utils.translation import gettext_lazy as _

TASKS = [
    ("classification", _("Classification")),
    ("regression", _("Regression")),
    ("sequence_classification", _("Sequence classification (sensor windows)")),
    ("forecasting", _("Forecasting")),
    ("image_classification", _("Image classification")),
]
ALGORITHMS = [
    ("random_forest", _("Random forest")),
    ("hist_gradient_boosting", _("Histogram gradient boosting")),
    ("gradient_boosting", _("Gradient boosting")),
    ("logistic_regression", _("Logistic regression")),
    ("linear_regression", _("Linear regression")),
    ("ridge", _("Ridge")),
    ("svm", _("Support vector machine")),
    ("gaussian_nb", _("Gaussian naive Bayes")),
    ("knn", _("k nearest neighbours")),
    ("mlp", _("Multi-layer perceptron (scikit-learn)")),
    ("keras_mlp", _("Keras MLP")),
    ("keras_lstm", _("Keras LSTM")),
    ("keras_gru", _("Keras GRU")),
    ("keras_cnn1d", _("Keras 1D CNN")),
    ("keras_cnn2d", _("Keras 2D CNN (images)")),
]
DEVICES = [("cpu", _("CPU")), ("gpu", _("GPU (waits for a GPU worker)")), ("gpu_or_cpu", _("GPU, or CPU when none is online"))]


def _words(text: str) -> list[str]:
    return [w.strip() for w in (text or "").replace("\n", ",").split(",") if w.strip()]


class TrainForm(forms.Form):
    dataset_version = forms.ChoiceField(label=_("Data"), help_text=_("The latest published version of a dataset you may use."))
    name = forms.CharField(label=_("Run name"), max_length=200, required=False)
    task = forms.ChoiceField(label=_("Task"), choices=TASKS)
    target = forms.CharField(label=_("Target column"), max_length=200)
    features = forms.CharField(
        label=_("Feature columns"), required=False, help_text=_("Comma-separated; empty: every other column.")
    )
    text_features = forms.CharField(
        label=_("Text columns"),
        required=False,
        help_text=_("Comma-separated free-text columns (e.g. ticket descriptions) to read as character n-grams."),
    )
    time_column = forms.CharField(label=_("Time column"), max_length=200, required=False)
    group_column = forms.CharField(label=_("Group column"), max_length=200, required=False, help_text=_("e.g. machine id"))
    algorithm = forms.ChoiceField(label=_("Algorithm"), choices=ALGORITHMS)
    params = forms.JSONField(
        label=_("Parameters (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_('Fixed hyper-parameters, e.g. {"n_estimators": 200}.'),
    )
    search = forms.JSONField(
        label=_("Search space (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_('Values to try, e.g. {"max_depth": [null, 10, 20]}; searched by cross-validation.'),
    )
    cv_folds = forms.IntegerField(label=_("Cross-validation folds"), required=False, min_value=0, max_value=10)
    holdout = forms.FloatField(label=_("Holdout share"), required=False, min_value=0.05, max_value=0.5, initial=0.2)
    seed = forms.IntegerField(label=_("Random seed"), initial=42)
    keras = forms.JSONField(
        label=_("Keras options (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_('For Keras algorithms, e.g. {"window": 30, "epochs": 20, "units": 32}.'),
    )
    device = forms.ChoiceField(label=_("Run on"), choices=DEVICES, initial="cpu")
    registered_model = forms.ChoiceField(label=_("Register into"), required=False)

    def __init__(self, *args, versions=(), models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].choices = [
            (str(v.pk), f"{v.dataset.department.slug}.{v.dataset.slug} v{v.number}") for v in versions
        ]
        self.fields["registered_model"].choices = [("", _("Do not register (evaluate only)"))] + [
            (str(m.pk), f"{m.department.slug}/{m.slug}") for m in models
        ]

    def clean_params(self):
        return self._object("params")

    def clean_search(self):
        return self._object("search")

    def clean_keras(self):
        return self._object("keras")

    def _object(self, name):
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Give an object in braces, e.g. {}."))
        return value

    def spec(self) -> dict:
        """The training spec the services validate (models_repo.engine.spec)."""
        data = self.cleaned_data
        algorithm = {"name": data["algorithm"]}
        if data.get("params"):
            algorithm["params"] = data["params"]
        if data.get("search"):
            algorithm["search"] = data["search"]
        spec = {"task": data["task"], "target": data["target"].strip(), "algorithms": [algorithm], "seed": data["seed"]}
        for key in ("features", "text_features"):
            if _words(data.get(key)):
                spec[key] = _words(data[key])
        for key in ("time_column", "group_column"):
            if (data.get(key) or "").strip():
                spec[key] = data[key].strip()
        if data.get("cv_folds"):
            spec["cv_folds"] = data["cv_folds"]
        if data.get("holdout"):
            spec["split"] = {"holdout": data["holdout"]}
        if data["algorithm"].startswith("keras_"):
            spec["keras"] = {**data.get("keras", {}), "device": data["device"]}
        return spec

    def field_for(self, key: str) -> str | None:
        """The form field a service error key (spec.target, spec.algorithms.0.params…) belongs to."""
        parts = key.split(".")
        if parts[0] == "spec":
            parts = parts[1:]
        if not parts:
            return None
        head = parts[0]
        if head == "algorithms":
            return {"params": "params", "search": "search"}.get(parts[2] if len(parts) > 2 else "", "algorithm")
        if head == "split":
            return "holdout"
        return head if head in self.fields else None


class ModelCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated"))

    def clean_tags(self):
        return _words(self.cleaned_data["tags"])


class PromotionForm(forms.Form):
    reason = forms.CharField(label=_("Why this version?"), required=False, max_length=2000)


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


def pretty(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) if value else ""


class ModelSettingsForm(forms.Form):
    """A model's description, card, promotion gate and continuous learning (maintainers)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated"))
    intended_use = forms.CharField(label=_("Intended use"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    data = forms.CharField(label=_("Data"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    limitations = forms.CharField(label=_("Limitations"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.CharField(label=_("Owner"), required=False, max_length=200)
    gate_metric = forms.CharField(
        label=_("Gate metric"),
        required=False,
        max_length=40,
        help_text=_("e.g. f1_macro or rmse; empty: the run's scoring metric."),
    )
    gate_threshold = forms.FloatField(
        label=_("Gate threshold"),
        required=False,
        help_text=_("A candidate meeting it may be promoted even if production scores better."),
    )
    retrain_dataset = forms.ChoiceField(label=_("Re-train on every new version of"), required=False)
    retrain_spec = forms.JSONField(
        label=_("Training spec for re-training (JSON)"), required=False, widget=forms.Textarea(attrs={"rows": 4, "class": "mono"})
    )
    auto_promote = forms.BooleanField(label=_("Ask for promotion when a re-trained version passes the gate"), required=False)

    CARD = ("intended_use", "data", "limitations", "owner")

    def __init__(self, *args, model=None, datasets=(), **kwargs):
        if model is not None and not args and "initial" not in kwargs:
            latest_spec = next((v.run.spec for v in model.versions.select_related("run").order_by("-number") if v.run), {})
            kwargs["initial"] = {
                "name": model.name,
                "description": model.description,
                "tags": ", ".join(model.tags or []),
                **{k: (model.card or {}).get(k, "") for k in self.CARD},
                "gate_metric": model.gate_metric,
                "gate_threshold": model.gate_threshold,
                "retrain_dataset": str(model.retrain_dataset_id or ""),
                "retrain_spec": model.retrain_spec or latest_spec or None,
                "auto_promote": model.auto_promote,
            }
        super().__init__(*args, **kwargs)
        self.fields["retrain_dataset"].choices = [("", _("Off"))] + [
            (str(d.pk), f"{d.department.slug}.{d.slug}") for d in datasets
        ]

    def clean_tags(self):
        return _words(self.cleaned_data["tags"])

    def model_values(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "tags": data["tags"],
            "card": {k: data[k] for k in self.CARD if data.get(k)},
            "gate_metric": data["gate_metric"].strip(),
            "gate_threshold": data["gate_threshold"],
        }


class BatchPredictForm(forms.Form):
    """Predict a whole dataset version with one version of the model, into a dataset of predictions."""

    dataset_version = forms.ChoiceField(label=_("Data to predict"), help_text=_("The latest published version of a dataset."))
    version = forms.ChoiceField(label=_("Model version"))
    output_name = forms.CharField(
        label=_("Output dataset"),
        max_length=200,
        help_text=_("A new dataset of this name in the model's department, or a new version of it if it exists."),
    )

    def __init__(self, *args, data_versions=(), model_versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].choices = [(str(v.pk), str(v)) for v in data_versions]
        self.fields["version"].choices = [
            (str(v.number), f"v{v.number}" + (f" ({', '.join(a.name for a in v.aliases.all())})" if v.aliases.all() else ""))
            for v in model_versions
        ]


class VersionUploadForm(forms.Form):
    """A version from a model file (models_repo.services.version_upload checks the file and the JSON)."""

    file = forms.FileField(
        label=_("Model file"), help_text=_("ONNX (.onnx), Keras (.keras) or skops (.skops); pickles are refused.")
    )
    input_schema = forms.CharField(
        label=_("Input schema (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text=_(
            'Needed when the file does not name its columns, e.g. [{"name": "temp", "type": "number"}]; '
            "types: number, integer, string, boolean, datetime."
        ),
    )
    output = forms.CharField(
        label=_("Classes (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 1, "class": "mono"}),
        help_text=_('For a classifier whose file does not name its classes, e.g. {"classes": ["no", "yes"]}.'),
    )
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
