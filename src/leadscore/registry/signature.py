"""The registered model's MLflow signature: each input column typed as the ordinary readers type it, optional
where the model can do without it.

A model trained on a flat table sees raw text (``leadscore train --table`` reads every value as text, and its
first step, :class:`~leadscore.model.cleaning.TableCleaner`, decides what each column is). Typing the signature
from that text would make every column ``string``, and MLflow, which enforces the signature before the model
sees a row, would then refuse the numbers that ``pd.read_csv``, Spark and JSON clients send. So each column is
typed by the same parser that ``pd.read_csv`` uses, run on the training values themselves:

- whole numbers never missing: ``long``; other numbers: ``double``; ``True``/``False``: ``boolean``;
  anything else: ``string`` (already typed columns, as in a CRM feature frame or a Parquet table, keep their
  type: integers ``long``, floats ``double``, booleans ``boolean``);
- a column with a missing value in training (blank, or a placeholder such as "unknown") is optional
  (``required=False``): the model treats its absence as missing values, as it learnt to. A missing value makes
  every reader give floats, so an optional whole-number column is ``double`` (MLflow's own advice);
- a column never filled in during training is not in the signature (the model reads it as a constant).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

import pandas as pd

# MLflow's type names for the pandas dtypes the readers give (numpy kinds: bool, int, unsigned, float, datetime).
_KIND_TO_MLFLOW = {"b": "boolean", "i": "long", "u": "long", "f": "double", "M": "datetime"}
# pandas.api.types.infer_dtype's names for object columns (of Python values) as MLflow types.
_INFERRED_TO_MLFLOW = {
    "boolean": "boolean",
    "integer": "long",
    "floating": "double",
    "mixed-integer-float": "double",
    "decimal": "double",
    "datetime64": "datetime",
    "datetime": "datetime",
}


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype)


def _mlflow_type(values: pd.Series) -> str:
    """The MLflow type of a typed column (what pandas, Parquet and Spark give for it)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return "string"  # MLflow's datetime is timezone-naive: zoned times travel as ISO text
    kind = getattr(values.dtype, "kind", "O")
    if kind in _KIND_TO_MLFLOW and not isinstance(values.dtype, pd.CategoricalDtype):
        return _KIND_TO_MLFLOW[kind]
    return _INFERRED_TO_MLFLOW.get(pd.api.types.infer_dtype(values, skipna=True), "string")


def reader_types(X: pd.DataFrame) -> dict[str, str]:
    """Each column's MLflow type as ``pd.read_csv`` (and Spark's ``inferSchema``) would type its values.

    Text columns go once through pandas' own CSV parser, so "56" is a number and "yes" stays text exactly as
    ``pd.read_csv`` decides (with its missing-value words such as "NA"); typed columns keep their type.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"age": ["56", "41"], "rate": ["1.1", ""], "job": ["admin.", "unknown"],
    ...                     "opted_in": ["True", "False"], "calls": [3, 0]})
    >>> reader_types(raw)
    {'age': 'long', 'rate': 'double', 'job': 'string', 'opted_in': 'boolean', 'calls': 'long'}
    """
    text = [column for column in X.columns if _is_text(X[column])]
    types = {column: _mlflow_type(X[column]) for column in X.columns if column not in text}
    if text:
        parsed = pd.read_csv(io.StringIO(X[text].to_csv(index=False)), dtype=None, low_memory=False)
        # By position: read_csv would rename repeated or blank names.
        types |= {column: _mlflow_type(parsed.iloc[:, i]) for i, column in enumerate(text)}
    return {column: types[column] for column in X.columns}


def input_schema(X: pd.DataFrame, optional: Iterable[str] = ()):
    """The MLflow input schema of ``X``: :func:`reader_types`, and ``required=False`` for ``optional`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> schema = input_schema(pd.DataFrame({"calls": ["3", "1"], "source": ["web", None]}), optional=["source"])
    >>> [(c.name, c.type.name, c.required) for c in schema.inputs]
    [('calls', 'long', True), ('source', 'string', False)]
    """
    from mlflow.types.schema import ColSpec, Schema

    optional = set(optional)
    types = reader_types(X)
    specs = []
    for column, kind in types.items():
        if column in optional and kind == "long":
            kind = "double"  # a missing value makes every reader give floats
        specs.append(ColSpec(kind, column, required=column not in optional))
    return Schema(specs)


def conform(frame: pd.DataFrame, schema) -> pd.DataFrame:
    """``frame`` with each column of ``schema`` it has cast to the schema's type, where MLflow would not.

    MLflow refuses, before the model sees a row, an ``int64`` column where the signature says ``double`` (it
    converts only ``int32`` and smaller, or 0/1) and a float column where it says ``string`` (a column left
    entirely empty in a CSV is read as float NaN). Serving and Spark cast by the signature first; this does the
    same for a pandas frame. Other columns, and columns already of the right type, are left as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow.types.schema import ColSpec, Schema
    >>> schema = Schema([ColSpec("double", "rate"), ColSpec("string", "job", required=False)])
    >>> conform(pd.DataFrame({"rate": [1, 2], "job": [float("nan")] * 2}), schema).dtypes.astype(str).tolist()
    ['float64', 'object']
    """
    out = frame.copy()
    for spec in schema.inputs:
        if spec.name not in out.columns:
            continue
        values = out[spec.name]
        kind = getattr(spec.type, "name", "")
        if kind in ("double", "float") and values.dtype.kind in "iub":
            out[spec.name] = values.astype("float64")
        elif kind == "string" and not _is_text(values):
            out[spec.name] = values.astype(object).where(values.notna(), None)
    return out


def example_frame(X: pd.DataFrame, schema, rows: int = 5) -> pd.DataFrame:
    """The first ``rows`` of ``X`` as a reader gives them, conformed to ``schema``: the logged input example."""
    head = X.head(rows)
    text = [column for column in head.columns if _is_text(head[column])]
    out = head.copy()
    if text:
        parsed = pd.read_csv(io.StringIO(head[text].to_csv(index=False)), dtype=None)
        for i, column in enumerate(text):
            out[column] = parsed.iloc[:, i].to_numpy()
    return conform(out, schema)


def model_signature(X: pd.DataFrame, kinds: Mapping[str, str], outputs):
    """The signature a model trained on ``X`` is logged with: :func:`input_schema` and ``outputs``' schema.

    Optional columns are those the model saw missing (:attr:`~leadscore.model.cleaning.TableCleaner.optional_`:
    a blank or a placeholder such as "unknown" counts). Columns it never saw filled in are left out: it reads
    them as a constant whatever comes, and a reader types an empty column as it pleases (pandas as float, Spark
    as string), which MLflow would refuse.
    """
    from mlflow.models import ModelSignature, infer_signature

    from leadscore.model.cleaning import TableCleaner

    cleaner = TableCleaner(kinds=dict(kinds)).fit(X)
    used = [column for column in X.columns if column not in set(cleaner.empty_)]
    inputs = input_schema(X[used], cleaner.optional_)
    return ModelSignature(inputs=inputs, outputs=infer_signature(None, outputs).outputs)
