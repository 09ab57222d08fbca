"""Where a dataset's CSV comes from and what its columns mean.

MoleculeNet files are fetched from their public URLs (or taken from `GALLON_DATA_DIR` on
offline machines) and always checked against the sha256 of the uncompressed CSV, so a
result can only ever come from the canonical bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.errors import GallonError

TaskType = Literal["classification", "regression"]
DATA_DIR_ENV = "GALLON_DATA_DIR"
_S3 = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    file_name: str
    url: str
    sha256: str
    smiles_column: str
    target_columns: tuple[str, ...]
    task_type: TaskType


_SIDER_TASKS = (
    "Hepatobiliary disorders",
    "Metabolism and nutrition disorders",
    "Product issues",
    "Eye disorders",
    "Investigations",
    "Musculoskeletal and connective tissue disorders",
    "Gastrointestinal disorders",
    "Social circumstances",
    "Immune system disorders",
    "Reproductive system and breast disorders",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "General disorders and administration site conditions",
    "Endocrine disorders",
    "Surgical and medical procedures",
    "Vascular disorders",
    "Blood and lymphatic system disorders",
    "Skin and subcutaneous tissue disorders",
    "Congenital, familial and genetic disorders",
    "Infections and infestations",
    "Respiratory, thoracic and mediastinal disorders",
    "Psychiatric disorders",
    "Renal and urinary disorders",
    "Pregnancy, puerperium and perinatal conditions",
    "Ear and labyrinth disorders",
    "Cardiac disorders",
    "Nervous system disorders",
    "Injury, poisoning and procedural complications",
)
_TOX21_TASKS = (
    "NR-AR",
    "NR-AR-LBD",
    "NR-AhR",
    "NR-Aromatase",
    "NR-ER",
    "NR-ER-LBD",
    "NR-PPAR-gamma",
    "SR-ARE",
    "SR-ATAD5",
    "SR-HSE",
    "SR-MMP",
    "SR-p53",
)

MOLECULENET: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "bace",
            "bace.csv",
            _S3 + "bace.csv",
            "f3fb9ce90bada3e2bd6148b0df13f8f8145a357bf87df0dd5b391ede974fc737",
            "mol",
            ("Class",),
            "classification",
        ),
        DatasetSpec(
            "bbbp",
            "BBBP.csv",
            _S3 + "BBBP.csv",
            "d07a38487aeac5cee5508413e468043ef3097451d2a112701c2d60be9ec6b662",
            "smiles",
            ("p_np",),
            "classification",
        ),
        DatasetSpec(
            "clintox",
            "clintox.csv",
            _S3 + "clintox.csv.gz",
            "9999816e760dd838358b5d88e81cea2fc062be4458ffa412ceecdba4f88a67b6",
            "smiles",
            ("FDA_APPROVED", "CT_TOX"),
            "classification",
        ),
        DatasetSpec(
            "hiv",
            "HIV.csv",
            _S3 + "HIV.csv",
            "9ffa7fe57dc86c342627ee1d5255e937e2ab812393c73c4d16c697022f6e1d22",
            "smiles",
            ("HIV_active",),
            "classification",
        ),
        DatasetSpec(
            "esol",
            "delaney-processed.csv",
            _S3 + "delaney-processed.csv",
            "8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189",
            "smiles",
            ("measured log solubility in mols per litre",),
            "regression",
        ),
        DatasetSpec(
            "freesolv",
            "SAMPL.csv",
            _S3 + "SAMPL.csv",
            "ab5895d914ee87cb563bd7b9611e869527bba45bec6b014d34dc495a0f9dcb72",
            "smiles",
            ("expt",),
            "regression",
        ),
        DatasetSpec(
            "lipo",
            "Lipophilicity.csv",
            _S3 + "Lipophilicity.csv",
            "aed41590cb30609d51d8e08ad3ff06495a76e80e211358801f596b10da69bacd",
            "smiles",
            ("exp",),
            "regression",
        ),
        DatasetSpec(
            "tox21",
            "tox21.csv",
            _S3 + "tox21.csv.gz",
            "7d7e7facd853a63e79ddce4e9c3fcb7a0d83a1c300b603031c0f2c64fbe77761",
            "smiles",
            _TOX21_TASKS,
            "classification",
        ),
        DatasetSpec(
            "sider",
            "sider.csv",
            _S3 + "sider.csv.gz",
            "71efc6ac4ca82d6545bc512509863281be0f17234afd7adaf71a71899988302e",
            "smiles",
            _SIDER_TASKS,
            "classification",
        ),
    )
}


class DatasetError(GallonError):
    """The data file cannot be had or does not look like the one asked for."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(spec: DatasetSpec, target: Path) -> None:
    print(f"downloading {spec.url}", file=sys.stderr)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(spec.url, timeout=120) as response:
                stream = gzip.GzipFile(fileobj=response) if spec.url.endswith(".gz") else response
                shutil.copyfileobj(stream, tmp)
        except Exception as error:
            tmp_path.unlink(missing_ok=True)
            raise DatasetError(
                f"could not download {spec.url} ({error}); on an offline machine set {DATA_DIR_ENV} "
                f"to a folder holding {spec.file_name}"
            ) from None
    os.replace(tmp_path, target)


def locate_moleculenet(spec: DatasetSpec, download_dir: Path) -> Path:
    """The verified local CSV for `spec`: from GALLON_DATA_DIR if set, else downloaded once."""
    local_dir = os.environ.get(DATA_DIR_ENV)
    if local_dir:
        path = Path(local_dir) / spec.file_name
        if not path.is_file():
            raise DatasetError(f"{DATA_DIR_ENV}={local_dir} has no {spec.file_name}; unset it to download instead")
    else:
        download_dir.mkdir(parents=True, exist_ok=True)
        path = download_dir / spec.file_name
        if not path.is_file():
            _download(spec, path)
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise DatasetError(
            f"{path} has sha256 {actual}, expected {spec.sha256} for {spec.name}; "
            "the file is not the canonical MoleculeNet CSV: delete it and download again"
        )
    return path


def _numeric_labels(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A label column as float64 (NaN = missing); text or infinities name the first bad row."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    bad = (values.isna() & ~blank) | np.isinf(values)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            f"{path} column {column!r} row {first + 1} holds {raw.iloc[first]!r}, not a finite number; "
            "labels must be numeric (empty cells mean missing)"
        )
    return values


def read_table(path: Path, smiles_column: str, target_columns: tuple[str, ...]) -> pd.DataFrame:
    """Raw rows with their 1-based data-row numbers; SMILES kept as text, labels as floats (NaN = missing)."""
    try:
        frame = pd.read_csv(path, dtype={smiles_column: str}, keep_default_na=True, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} is empty: expected a header line and data rows") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {path} as CSV: {error}") from None
    missing = [column for column in (smiles_column, *target_columns) if column not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path} has no column(s) {missing}; its columns are {list(frame.columns)[:20]}: "
            "fix dataset.csv.smiles_column / target_columns in params.yaml"
        )
    if frame.empty:
        raise DatasetError(f"{path} has a header but no data rows")
    table = pd.DataFrame({"row": range(1, len(frame) + 1), "raw_smiles": frame[smiles_column]})
    for column in target_columns:
        table[column] = _numeric_labels(frame, column, path)
    return table


def check_labels(table: pd.DataFrame, target_columns: tuple[str, ...], task_type: TaskType, path: Path) -> None:
    """Classification labels must be 0 or 1: a 2 or 0.5 would silently train a wrong loss."""
    if task_type != "classification":
        return
    for column in target_columns:
        values = table[column]
        bad = values.notna() & ~values.isin((0.0, 1.0))
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetError(
                f"{path} column {column!r} row {int(table['row'].iloc[first])} holds {values.iloc[first]:g}; "
                "classification labels must be 0 or 1 (empty = missing); "
                "use task_type: regression for continuous values"
            )
