import json, os, sys
n = int(sys.argv[1])
with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as f:
    json.dump({"tripled": 3 * n, "greeting": f"hello {os.environ['PREBUILT_INPUT_NAME']}"}, f)
