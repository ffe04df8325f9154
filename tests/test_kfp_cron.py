"""KFP's 6-field cron from what users write, and the explanation of a bad one (no KFP, no compile)."""
import pytest

from components.errors import ConfigError
from ops.kubeflow.submit import kfp_cron


def test_kfp_cron_conversions():
    assert kfp_cron("0 3 * * *") == "0 0 3 * * *"
    assert kfp_cron("*/15  9-17 * * MON-FRI") == "0 */15 9-17 * * MON-FRI"
    assert kfp_cron("30 0 3 1 JAN,JUL ?") == "30 0 3 1 JAN,JUL ?"
    assert kfp_cron("@daily") == "@daily" and kfp_cron("@every 6h") == "@every 6h"


@pytest.mark.parametrize("cron, message", [
    ("0 3 * *", "has 4 field(s); give the standard 5 (minute hour"),
    ("0 0 3 * * * *", "has 7 field(s); give the standard 5 (minute hour"),
    ("0 3 * * FUNDAY", "day of week field 'FUNDAY' is not a number, name, range or step (allowed: 0-6, SUN-SAT"),
    ("61 3 * * *", "minute field '61'"),
    ("0 25 * * *", "hour field '25'"),
    ("0 3 0 * *", "day of month field '0'"),
    ("0 3 * 13 *", "month field '13'"),
    ("*/0 3 * * *", "minute field '*/0'"),
])
def test_a_bad_cron_is_explained(cron, message):
    with pytest.raises(ConfigError, match=None) as caught:
        kfp_cron(cron)
    assert message in str(caught.value), str(caught.value)
