"""``python -m airflow_segprovider.cli``: the ``segprovider`` command."""

import sys

from airflow_segprovider.cli.main import main

sys.exit(main())
