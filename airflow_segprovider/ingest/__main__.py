import sys

from airflow_segprovider.ingest.cli import main

sys.exit(main())
