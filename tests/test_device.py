import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import device

FIXTURES = Path(__file__).parent / "fixtures" / "sysroot"

# `sysctl <MAC_SYSCTL_KEYS>` on a Mac mini (2023), M2 Pro 12-core, 32 GB.
SYSCTL_M2_PRO = """\
machdep.cpu.brand_string: Apple M2 Pro
hw.model: Mac14,12
hw.memsize: 34359738368
hw.physicalcpu: 12
hw.logicalcpu: 12
hw.perflevel0.physicalcpu: 8
hw.perflevel1.physicalcpu: 4
"""
# The same on a MacBook Pro 16" (2019): no perflevels (sysctl reports those on stderr).
SYSCTL_INTEL_MAC = """\
machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz
hw.model: MacBookPro16,1
hw.memsize: 17179869184
hw.physicalcpu: 8
hw.logicalcpu: 16
"""

EXPECTED = {
    "pi4": {
        "device_name": "Raspberry Pi 4 Model B Rev 1.4",
        "board": "Raspberry Pi 4 Model B Rev 1.4",
        "board_revision": "c03114",
        "soc": "BCM2711",
        "cpu_model": "ARM Cortex-A72",
        "physical_cores": 4,
        "logical_cores": 4,
        "ram_total_mb": 3793.4,
        "governor": "ondemand",
        "freq_cur_mhz": 600.0,
        "freq_max_mhz": 1800.0,
        "temperature_c": 48.686,
        "thermal_zone": "cpu-thermal",
        "os_pretty": "Debian GNU/Linux 11 (bullseye)",
    },
    "pi5": {
        "device_name": "Raspberry Pi 5 Model B Rev 1.0",
        "board": "Raspberry Pi 5 Model B Rev 1.0",
        "board_revision": "d04170",
        "soc": "BCM2712",
        "cpu_model": "ARM Cortex-A76",
        "physical_cores": 4,
        "logical_cores": 4,
        "ram_total_mb": 8051.8,
        "governor": "ondemand",
        "freq_cur_mhz": 1500.0,
        "freq_max_mhz": 2400.0,
        "temperature_c": 55.25,
        "thermal_zone": "cpu-thermal",
        "os_pretty": "Debian GNU/Linux 12 (bookworm)",
    },
    "x86_laptop": {
        "device_name": "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz (4 cores)",
        "board": None,
        "board_revision": None,
        "soc": None,
        "cpu_model": "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz",
        "physical_cores": 4,
        "logical_cores": 8,
        "ram_total_mb": 15725.5,
        "governor": "powersave",
        "freq_cur_mhz": 1197.321,
        "freq_max_mhz": 4700.0,
        "temperature_c": 61.0,  # the hottest of four zones
        "thermal_zone": "x86_pkg_temp",
        "os_pretty": "Ubuntu 22.04.4 LTS",
    },
}


@pytest.fixture
def use_sysroot(monkeypatch):
    def use(root: Path) -> None:
        monkeypatch.setenv(device.SYSROOT_ENV, str(root))

    return use


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fingerprint_of_recorded_devices(use_sysroot, name):
    use_sysroot(FIXTURES / name)

    fp = device.fingerprint()

    assert {key: fp[key] for key in EXPECTED[name]} == EXPECTED[name]
    assert fp["chip"] is None
    assert re.fullmatch(r"[0-9a-f]{12}", fp["device_id"])
    json.dumps(fp)  # env.json must be able to hold it


def test_device_ids_are_stable_and_distinct(use_sysroot):
    ids = {}
    for name in EXPECTED:
        use_sysroot(FIXTURES / name)
        ids[name] = device.fingerprint()["device_id"]
        assert device.fingerprint()["device_id"] == ids[name]

    assert len(set(ids.values())) == len(EXPECTED)


def test_device_id_ignores_sensors_and_versions(use_sysroot, monkeypatch, tmp_path):
    use_sysroot(FIXTURES / "pi5")
    before = device.fingerprint()["device_id"]
    root = tmp_path / "pi5"
    shutil.copytree(FIXTURES / "pi5", root)
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("81000\n")
    (root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").write_text("performance\n")
    (root / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n')
    monkeypatch.setattr(device, "framework_versions", lambda: {"torch": "9.9"})
    use_sysroot(root)

    after = device.fingerprint()

    assert after["temperature_c"] == 81.0
    assert after["device_id"] == before


def test_device_id_changes_with_the_hardware():
    hw = {"cpu_model": "ARM Cortex-A76", "physical_cores": 4, "logical_cores": 4}

    assert device.device_id(hw | {"ram_total_mb": 8051.8}) == device.device_id(
        hw | {"ram_total_mb": 8000.0}  # same GiB after rounding
    )
    assert device.device_id(hw | {"ram_total_mb": 8051.8}) != device.device_id(
        hw | {"ram_total_mb": 4096.0}
    )


def test_empty_sysroot_yields_unknown_sensors(use_sysroot, tmp_path):
    use_sysroot(tmp_path)

    sensors = device.sensors()

    assert sensors == dict.fromkeys(
        ["governor", "freq_cur_mhz", "freq_max_mhz", "temperature_c", "thermal_zone"]
    )


def test_read_text_goes_through_the_sysroot(use_sysroot, monkeypatch):
    monkeypatch.delenv(device.SYSROOT_ENV, raising=False)
    assert device.sysroot() == Path("/")

    use_sysroot(FIXTURES / "pi4")

    assert device.sysroot() == FIXTURES / "pi4"
    assert device.read_text("proc/device-tree/model").endswith("\x00")
    assert device.read_text("proc/no-such-file") is None


@pytest.mark.parametrize(
    ("revision", "soc"),
    [
        ("c03114", "BCM2711"),  # Pi 4B 4 GB
        ("d04170", "BCM2712"),  # Pi 5 8 GB
        ("a02082", "BCM2837"),  # Pi 3B
        ("a01041", "BCM2836"),  # Pi 2B
        ("9000c1", "BCM2835"),  # Zero W
        ("0002", None),  # old-style code: no processor field
        ("zz", None),
        (None, None),
    ],
)
def test_pi_soc(revision, soc):
    assert device.pi_soc(revision) == soc


def test_cpu_model_names_big_little_arm_cores():
    blocks = [
        f"processor\t: {cpu}\nCPU implementer\t: 0x41\nCPU part\t: {part}\n"
        for cpu, part in enumerate(["0xd05"] * 4 + ["0xd0b"] * 4)
    ]

    assert device.cpu_model_from_cpuinfo("\n".join(blocks)) == "ARM Cortex-A55 + Cortex-A76"


def test_cpu_model_falls_back_to_the_hardware_line():
    cpuinfo = "processor\t: 0\nCPU implementer\t: 0x51\n\nHardware\t: Qualcomm SDM845\n"

    assert device.cpu_model_from_cpuinfo(cpuinfo) == "Qualcomm SDM845"


def test_parse_os_release():
    text = (FIXTURES / "x86_laptop" / "etc" / "os-release").read_text()

    values = device.parse_os_release(text)

    assert values["PRETTY_NAME"] == "Ubuntu 22.04.4 LTS"
    assert values["VERSION_CODENAME"] == "jammy"


def test_apple_silicon_from_recorded_sysctl():
    values = device.parse_sysctl(SYSCTL_M2_PRO)

    hw = device.mac_hardware(values)

    assert device.apple_chip(values["machdep.cpu.brand_string"]) == "Apple M2 Pro"
    assert device.perf_efficiency_cores(values) == (8, 4)
    assert hw["chip"] == "Apple M2 Pro"
    assert (hw["physical_cores"], hw["logical_cores"]) == (12, 12)
    assert (hw["perf_cores"], hw["efficiency_cores"]) == (8, 4)
    assert hw["ram_total_mb"] == 32768.0
    assert hw["board"] == "Mac14,12"
    assert device.device_name(hw) == "Apple M2 Pro"


def test_intel_mac_from_recorded_sysctl():
    values = device.parse_sysctl(SYSCTL_INTEL_MAC)

    hw = device.mac_hardware(values)

    assert hw["chip"] is None
    assert device.perf_efficiency_cores(values) == (None, None)
    assert (hw["physical_cores"], hw["logical_cores"]) == (8, 16)
    assert hw["ram_total_mb"] == 16384.0
    assert device.device_name(hw) == "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz (8 cores)"


def test_framework_versions_never_import_and_mark_missing(monkeypatch):
    monkeypatch.setattr(device, "DISTRIBUTIONS", ("numpy", "no-such-distribution-xyz"))

    versions = device.framework_versions()

    assert versions["numpy"]
    assert versions["no-such-distribution-xyz"] is None


def test_default_versions_cover_every_framework():
    assert set(device.framework_versions()) == set(device.DISTRIBUTIONS)


def test_fingerprint_imports_no_framework():
    code = (
        "import sys\n"
        "from harness import device\n"
        "device.fingerprint()\n"
        "loaded = [m for m in ('torch', 'tensorflow', 'onnxruntime', 'keras', 'coremltools')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
