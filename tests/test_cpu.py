"""Native reduced-precision arithmetic, from recorded /proc/cpuinfo and sysctl text."""

from harness.cpu import flags_from_cpuinfo, flags_from_sysctl, native

EPYC = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 f16c\n"
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"
PI5 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"  # noqa: E501


def test_x86_flags():
    found = flags_from_cpuinfo(EPYC)
    assert native("bf16", found).instructions == ("x86 AVX512-BF16",)
    assert native("int8", found).instructions == ("x86 AVX512-VNNI",)
    fp16 = native("fp16", found)  # f16c converts, it does not compute
    assert not fp16.available
    assert fp16.describe().startswith("this CPU has no native fp16 arithmetic (none of: ")


def test_raspberry_pi_4_has_none_and_pi_5_has_fp16_and_dot_product():
    pi4 = flags_from_cpuinfo(PI4)
    assert not any(native(p, pi4).available for p in ("fp16", "bf16", "int8"))
    pi5 = flags_from_cpuinfo(PI5)
    assert native("fp16", pi5).available
    assert native("int8", pi5).instructions == ("ARMv8.2 dot product (sdot)",)
    assert not native("bf16", pi5).available


def test_apple_silicon_from_sysctl():
    found = flags_from_sysctl(
        {
            "hw.optional.arm.FEAT_FP16": "1",
            "hw.optional.arm.FEAT_BF16": "1",
            "hw.optional.arm.FEAT_DotProd": "1",
            "hw.optional.arm.FEAT_I8MM": "0",
        }
    )
    assert found == {"asimdhp", "bf16", "asimddp"}
    assert native("bf16", found).describe() == "native bf16: ARMv8.6 BF16 (bfdot/bfmmla)"


def test_fp32_is_always_native_and_empty_text_has_nothing():
    assert native("fp32", frozenset()).available
    assert flags_from_cpuinfo("") == frozenset()
