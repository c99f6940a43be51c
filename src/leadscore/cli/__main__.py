"""The ``leadscore`` command as a Python file: ``python -m leadscore.cli``, and ``spark-submit`` (which runs ``.py``
files, not entry points).

Example
-------
::

    spark-submit --master yarn --archives leadscore-env.tar.gz#env \\
        "$(python -c 'import leadscore.cli.__main__ as m; print(m.__file__)')" \\
        score --engine spark --data hdfs:///crm/2025-06-30 --out hdfs:///crm/scores/2025-06-30

Under spark-submit, :func:`leadscore.spark.get_spark` uses spark-submit's master and resources.
"""

from __future__ import annotations

from leadscore.cli import app

if __name__ == "__main__":
    app(prog_name="leadscore")
