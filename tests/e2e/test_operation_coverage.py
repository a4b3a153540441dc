"""Every operation of botocore's Secrets Manager model is exercised by an end-to-end test."""

from __future__ import annotations

import re
from pathlib import Path

from botocore import xform_name

from strongroom.http.shapes import service_model
from strongroom.services.secretsmanager import OPERATIONS


def test_every_model_operation_is_implemented():
    assert set(service_model("secretsmanager").operation_names) == set(OPERATIONS)


def test_every_model_operation_is_called_by_an_e2e_test():
    here = Path(__file__).parent
    text = "\n".join(p.read_text() for p in here.glob("test_*.py") if p.name != Path(__file__).name)
    called = set(re.findall(r"\.([a-z_]+)\(", text)) | set(re.findall(r'"([a-z_]+)"', text))
    targets = set(re.findall(r"secretsmanager\.([A-Za-z]+)", text))
    missing = [op for op in service_model("secretsmanager").operation_names
               if xform_name(op) not in called and op not in targets]
    assert missing == []
