# The SIMD variant of this module's row helpers (simd_rows.h): the best
# this CPU runs, chosen at import; included by each kernel module.

cdef extern from "simd_rows.h":
    int mf_n_variants()
    const char* mf_variant_name(int i)
    int mf_variant_runs(int i)
    void mf_use_variant(int i)
    void mf_use_best()
    const char* mf_active_name()

mf_use_best()


def simd():
    """The SIMD variant of the row helpers in use: 'avx2' or 'baseline'."""
    return mf_active_name().decode()


def simd_variants():
    """The variants built into this module, worst first: {name: whether
    this CPU runs it}."""
    return {mf_variant_name(i).decode(): bool(mf_variant_runs(i))
            for i in range(mf_n_variants())}


def use_simd(name):
    """Run the row helpers of variant ``name`` (see ``simd_variants()``);
    ValueError when this build lacks it or this CPU cannot run it.  Not
    while a kernel of this module runs."""
    cdef int i
    for i in range(mf_n_variants()):
        if mf_variant_name(i).decode() == name:
            if not mf_variant_runs(i):
                raise ValueError(
                    f"this CPU cannot run the {name!r} kernels")
            mf_use_variant(i)
            return
    raise ValueError(
        f"this build has no {name!r} kernels (it has: "
        f"{', '.join(simd_variants())})")
