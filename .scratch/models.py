import sys
from pathlib import Path
sys.path.insert(0, '/work/wt/board'); sys.path.insert(0, '/work/wt/board/benchmarks')
from fpga_targets import KIND_METHODS, _digits_model
from quantmodels.ir import save_model
import numpy as np
for kind in sys.argv[1:]:
    mdir = Path(f'/work/wt/board/.scratch/models/{kind}')
    if not (mdir / 'model.json').exists():
        save_model(_digits_model(KIND_METHODS[kind]), mdir)
    from quantmodels.ir import load_model
    m = load_model(mdir)
    for L in m.layers:
        print(kind, L.name, L.rows, L.cols, L.input_bits, L.weight_bits, None if L.products is None else (L.products.shape, L.products.min(), L.products.max()))
