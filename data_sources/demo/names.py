"""Vietnamese text of the demo warehouse: synthetic people, Huế streets and places, catalogues.

Everything personal is made up and deterministic (drawn from the generator passed in). Phone
numbers use the prefix ``0200``, which is neither a mobile prefix nor a provincial area code, and
the six-digit serial of every 12-digit citizen ID starts with ``99``, so no value can be mistaken
for a real person's. Street and facility names are real places of Huế, used only as labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# --- people --------------------------------------------------------------------------------------
FAMILY_NAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 0.30),
    ("Trần", 0.09),
    ("Lê", 0.09),
    ("Phan", 0.06),
    ("Võ", 0.06),
    ("Hoàng", 0.05),
    ("Phạm", 0.05),
    ("Hồ", 0.05),
    ("Huỳnh", 0.03),
    ("Đặng", 0.03),
    ("Trương", 0.03),
    ("Bùi", 0.02),
    ("Đỗ", 0.02),
    ("Ngô", 0.02),
    ("Dương", 0.02),
    ("Tôn Thất", 0.02),
    ("Nguyễn Phúc", 0.01),
    ("Lý", 0.01),
    ("Mai", 0.01),
    ("Đoàn", 0.01),
    ("Châu", 0.01),
)
MIDDLE_MALE = ("Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Thanh", "Xuân", "Đình", "Ngọc", "Bảo", "Anh")
MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Bảo", "Khánh", "Hoài", "Diệu", "Tôn Nữ")
GIVEN_MALE = (
    "An", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Hải", "Hiếu", "Hoàng", "Hùng", "Huy", "Khang",
    "Khoa", "Lâm", "Long", "Minh", "Nam", "Nhân", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài",
    "Thắng", "Thành", "Thiện", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ",
)  # fmt: skip
GIVEN_FEMALE = (
    "Anh", "Châu", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hồng", "Hương", "Huyền",
    "Lan", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo",
    "Thu", "Thủy", "Trang", "Trâm", "Uyên", "Vân", "Vy", "Yến",
)  # fmt: skip

BIRTH_PROVINCE_CODES: tuple[tuple[str, float], ...] = (
    ("046", 0.86),  # Thừa Thiên Huế
    ("045", 0.04),  # Quảng Trị
    ("044", 0.03),  # Quảng Bình
    ("048", 0.03),  # Đà Nẵng
    ("049", 0.02),  # Quảng Nam
    ("001", 0.01),  # Hà Nội
    ("079", 0.01),  # TP Hồ Chí Minh
)


def _pick(rng: np.random.Generator, options: Sequence[str], n: int) -> np.ndarray:
    """``n`` options drawn uniformly."""
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


def person_names(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    """``n`` synthetic full names and whether each person is female."""
    female = rng.random(n) < 0.5
    family_names, weights = zip(*FAMILY_NAMES, strict=True)
    family = np.asarray(family_names, dtype=object)[
        rng.choice(len(family_names), n, p=np.asarray(weights) / sum(weights))
    ]
    middle = np.where(female, _pick(rng, MIDDLE_FEMALE, n), _pick(rng, MIDDLE_MALE, n))
    given = np.where(female, _pick(rng, GIVEN_FEMALE, n), _pick(rng, GIVEN_MALE, n))
    names = [f"{a} {b} {c}" for a, b, c in zip(family, middle, given, strict=True)]
    return names, female


def phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` ten-digit phone numbers in the unused ``0200`` block."""
    return [f"0200{value:06d}" for value in rng.integers(0, 1_000_000, n).tolist()]


def id_numbers(rng: np.random.Generator, birth_years: np.ndarray, female: np.ndarray) -> list[str]:
    """12-digit citizen ID numbers laid out like a CCCD: birth province, sex/century, year, serial.

    The serial always starts with ``99``, the marker of a synthetic number.
    """
    n = len(birth_years)
    codes, weights = zip(*BIRTH_PROVINCE_CODES, strict=True)
    province = np.asarray(codes, dtype=object)[rng.choice(len(codes), n, p=np.asarray(weights) / sum(weights))]
    century = np.where(birth_years >= 2000, 2, 0) + female.astype(int)
    serial = rng.integers(0, 10_000, n)
    return [
        f"{p}{c}{y % 100:02d}99{s:04d}"
        for p, c, y, s in zip(province, century.tolist(), birth_years.tolist(), serial.tolist(), strict=True)
    ]


def addresses(
    rng: np.random.Generator,
    ward_names: Sequence[str],
    ward_streets: Sequence[Sequence[str]],
    city: str,
) -> list[str]:
    """A house address in each ward; ``ward_names`` may name the district too, ``ward_streets`` the ward's streets."""
    n = len(ward_names)
    house = rng.integers(1, 300, n).tolist()
    alley = rng.integers(1, 200, n).tolist()
    style = rng.random(n).tolist()
    pick = rng.random(n).tolist()
    out = []
    for ward, streets, h, a, s, p in zip(ward_names, ward_streets, house, alley, style, pick, strict=True):
        if streets and s < 0.7:
            street = streets[int(p * len(streets))]
            place = f"{h} {street}" if s < 0.45 else f"{h} kiệt {a} {street}"
        elif ward.startswith("Xã"):
            place = f"Thôn {1 + a % 12}"
        else:
            place = f"Tổ dân phố {1 + a % 25}"
        out.append(f"{place}, {ward}, {city}")
    return out


def unit_ward(ward_name: str) -> str:
    """'Phường Vỹ Dạ' -> 'phường Vỹ Dạ', as written inside an agency name."""
    for kind in ("Thị trấn", "Phường", "Xã", "Đặc khu"):
        if ward_name.startswith(kind + " "):
            return kind.lower() + ward_name[len(kind) :]
    return ward_name


# --- places ------------------------------------------------------------------------------------
ROAD_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    # (segment name, pre-2025 ward it lies in, kind)
    ("Đường Lê Lợi", "Phường Vĩnh Ninh", "arterial"),
    ("Đường Hùng Vương", "Phường Phú Nhuận", "arterial"),
    ("Đường Trần Hưng Đạo", "Phường Đông Ba", "arterial"),
    ("Đường Điện Biên Phủ", "Phường Trường An", "arterial"),
    ("Đường Nguyễn Tất Thành (đoạn Thủy Dương)", "Phường Thủy Dương", "highway"),
    ("Cầu Trường Tiền", "Phường Vĩnh Ninh", "bridge"),
    ("Cầu Phú Xuân", "Phường Vĩnh Ninh", "bridge"),
    ("Đường Hà Nội", "Phường Phú Nhuận", "street"),
    ("Đường Nguyễn Huệ", "Phường Vĩnh Ninh", "street"),
    ("Đường Bến Nghé", "Phường Phú Hội", "street"),
    ("Đường Đống Đa", "Phường Phú Nhuận", "arterial"),
    ("Đường Lý Thường Kiệt", "Phường Phú Nhuận", "street"),
    ("Đường Phan Đình Phùng", "Phường Vĩnh Ninh", "street"),
    ("Đường Trần Phú", "Phường Phước Vĩnh", "arterial"),
    ("Đường Nguyễn Trường Tộ", "Phường Phước Vĩnh", "street"),
    ("Đường Phan Bội Châu", "Phường Trường An", "street"),
    ("Đường Bà Triệu", "Phường Xuân Phú", "arterial"),
    ("Đường Tố Hữu", "Phường Xuân Phú", "arterial"),
    ("Đường Phạm Văn Đồng", "Phường Vỹ Dạ", "arterial"),
    ("Đường Nguyễn Sinh Cung", "Phường Vỹ Dạ", "street"),
    ("Đường Võ Nguyên Giáp", "Phường Thủy Vân", "arterial"),
    ("Đường Lê Duẩn", "Phường Thuận Hòa", "arterial"),
    ("Đường Đinh Tiên Hoàng", "Phường Thuận Hòa", "street"),
    ("Đường Mai Thúc Loan", "Phường Thuận Lộc", "street"),
    ("Đường Chi Lăng", "Phường Gia Hội", "street"),
    ("Đường Nguyễn Trãi", "Phường Tây Lộc", "street"),
    ("Đường Tăng Bạt Hổ", "Phường Phú Hậu", "street"),
    ("Đường Kim Long", "Phường Kim Long", "street"),
    ("Đường Nguyễn Phúc Nguyên", "Phường Kim Long", "street"),
    ("Đường Lý Nam Đế", "Phường Hương Long", "arterial"),
    ("Đường Tản Đà", "Phường Hương Sơ", "street"),
    ("Đường Lý Thái Tổ", "Phường An Hòa", "highway"),
    ("Đường An Dương Vương", "Phường An Đông", "arterial"),
    ("Đường Ngự Bình", "Phường An Tây", "street"),
    ("Đường Minh Mạng", "Phường Thủy Xuân", "street"),
    ("Đường Bùi Thị Xuân", "Phường Phường Đúc", "street"),
    ("Đường Nguyễn Tất Thành (đoạn Phú Bài)", "Phường Phú Bài", "highway"),
    ("Quốc lộ 49A (đoạn Thuận An)", "Phường Thuận An", "highway"),
    ("Tỉnh lộ 10A (đoạn Phú Thượng)", "Phường Phú Thượng", "street"),
    ("Quốc lộ 1A (đoạn Tứ Hạ)", "Phường Tứ Hạ", "highway"),
    ("Quốc lộ 1A (đoạn Phong Điền)", "Phường Phong Thu", "highway"),
    ("Quốc lộ 1A (đoạn Lăng Cô)", "Thị trấn Lăng Cô", "highway"),
)

HOSPITALS: tuple[tuple[str, str, int, float], ...] = (
    # (name, pre-2025 ward, beds, typical occupancy)
    ("Bệnh viện Trung ương Huế", "Phường Vĩnh Ninh", 2200, 0.95),
    ("Bệnh viện Trường Đại học Y - Dược Huế", "Phường Vĩnh Ninh", 800, 0.91),
    ("Bệnh viện Trung ương Huế - Cơ sở 2", "Phường Phong An", 500, 0.78),
    ("Bệnh viện Quân y 268", "Phường Thuận Lộc", 300, 0.72),
    ("Bệnh viện Quốc tế Trung ương Huế", "Phường Vĩnh Ninh", 150, 0.66),
    ("Bệnh viện Đa khoa Hương Thủy", "Phường Phú Bài", 220, 0.82),
)

AIR_STATIONS: tuple[tuple[str, str, str], ...] = (
    # (name, pre-2025 ward, profile)
    ("Trạm quan trắc Lý Thường Kiệt", "Phường Phú Nhuận", "traffic"),
    ("Trạm quan trắc Đại Nội", "Phường Thuận Hòa", "background"),
    ("Trạm quan trắc Tố Hữu", "Phường Xuân Phú", "traffic"),
    ("Trạm quan trắc Kim Long", "Phường Kim Long", "background"),
    ("Trạm quan trắc KCN Phú Bài", "Phường Phú Bài", "industrial"),
    ("Trạm quan trắc Thuận An", "Phường Thuận An", "background"),
    ("Trạm quan trắc KCN Phong Điền", "Phường Phong Thu", "industrial"),
    ("Trạm quan trắc Chân Mây", "Xã Lộc Vĩnh", "industrial"),
)

RIVER_GAUGES: tuple[tuple[str, str, str, float, float, float, float, float, float], ...] = (
    # (station, river, pre-2025 ward, alert I, II, III, dry-season level, lag h, tide m)
    # Alert levels are demo values in the spirit of the real ones, not official thresholds.
    ("Kim Long", "Sông Hương", "Phường Kim Long", 1.0, 2.0, 3.5, 0.35, 0.0, 0.08),
    ("Phú Ốc", "Sông Bồ", "Phường Tứ Hạ", 1.5, 3.0, 4.5, 0.60, -1.0, 0.03),
    ("Thượng Nhật", "Sông Tả Trạch", "Xã Thượng Nhật", 4.0, 5.5, 7.0, 2.50, -8.0, 0.0),
    ("A Lưới", "Sông A Sáp", "Thị trấn A Lưới", 2.5, 3.5, 4.5, 1.20, -6.0, 0.0),
    ("Cầu Truồi", "Sông Truồi", "Xã Lộc Điền", 1.5, 2.5, 3.5, 0.50, -2.0, 0.05),
)

# --- public services -----------------------------------------------------------------------------
PROCEDURES: tuple[tuple[str, str, int, float], ...] = (
    # (code, name, statutory processing days, share of the volume)
    ("HT-01", "Đăng ký khai sinh", 1, 0.12),
    ("HT-02", "Đăng ký kết hôn", 3, 0.04),
    ("HT-03", "Đăng ký khai tử", 1, 0.03),
    ("HT-04", "Cấp bản sao trích lục hộ tịch", 1, 0.10),
    ("HT-05", "Xác nhận tình trạng hôn nhân", 3, 0.06),
    ("HT-06", "Đăng ký thay đổi, cải chính hộ tịch", 3, 0.03),
    ("CT-01", "Chứng thực bản sao từ bản chính", 1, 0.20),
    ("CT-02", "Chứng thực chữ ký", 1, 0.07),
    ("CT-03", "Đăng ký thường trú", 7, 0.07),
    ("KD-01", "Đăng ký kinh doanh hộ cá thể", 3, 0.06),
    ("KD-02", "Cấp giấy phép bán lẻ rượu", 10, 0.01),
    ("XD-01", "Cấp giấy phép xây dựng nhà ở riêng lẻ", 15, 0.05),
    ("DD-01", "Đăng ký biến động quyền sử dụng đất", 10, 0.08),
    ("DD-02", "Cấp giấy chứng nhận quyền sử dụng đất lần đầu", 30, 0.02),
    ("XH-01", "Trợ cấp xã hội hằng tháng cho người cao tuổi", 10, 0.06),
)

PROCEDURE_FIELDS = {"HT": "Hộ tịch", "CT": "Chứng thực", "KD": "Kinh doanh", "XD": "Xây dựng", "DD": "Đất đai"}
PROCEDURE_FIELDS |= {"XH": "Bảo trợ xã hội", "CT-03": "Cư trú"}
"""Field (lĩnh vực) of each procedure, by code or code prefix."""

# --- citizen feedback ----------------------------------------------------------------------------
FEEDBACK_TITLES: dict[str, tuple[str, ...]] = {
    "environment": (
        "Rác thải tập kết không đúng nơi quy định tại {place}",
        "Nước thải chảy tràn ra mặt đường tại {place}",
        "Đốt rác gây khói bụi tại {place}",
        "Mùi hôi từ cống thoát nước tại {place}",
        "Cây xanh gãy đổ tại {place}",
    ),
    "traffic": (
        "Đèn tín hiệu giao thông không hoạt động tại {place}",
        "Ùn tắc kéo dài giờ cao điểm tại {place}",
        "Ổ gà lớn gây nguy hiểm tại {place}",
        "Xe đỗ sai quy định tại {place}",
        "Biển báo giao thông bị che khuất tại {place}",
    ),
    "urban_order": (
        "Lấn chiếm vỉa hè để buôn bán tại {place}",
        "Xây dựng không phép tại {place}",
        "Quảng cáo rao vặt dán trái phép tại {place}",
        "Hát karaoke gây ồn sau 22 giờ tại {place}",
    ),
    "infrastructure": (
        "Đèn chiếu sáng công cộng bị hỏng tại {place}",
        "Nắp hố ga bị vỡ tại {place}",
        "Vỉa hè hư hỏng, bong tróc tại {place}",
        "Ngập úng cục bộ khi mưa tại {place}",
        "Đường ống cấp nước bị rò rỉ tại {place}",
    ),
    "public_services": (
        "Chậm trả kết quả hồ sơ hành chính",
        "Cổng dịch vụ công báo lỗi khi thanh toán",
        "Đề nghị hướng dẫn thủ tục đăng ký thường trú",
        "Phản ánh thái độ tiếp dân của cán bộ một cửa",
    ),
    "security": (
        "Mất trộm xe máy tại {place}",
        "Thanh thiếu niên tụ tập đua xe tại {place}",
        "Xô xát gây mất trật tự tại {place}",
        "Nghi vấn lừa đảo qua điện thoại",
    ),
    "health": (
        "Cơ sở kinh doanh thực phẩm không đảm bảo vệ sinh tại {place}",
        "Đề nghị phun thuốc diệt muỗi phòng sốt xuất huyết tại {place}",
        "Chó thả rông không rọ mõm tại {place}",
        "Bán thuốc không rõ nguồn gốc tại {place}",
    ),
    "other": (
        "Đề nghị lắp thêm ghế đá tại {place}",
        "Góp ý lịch thu gom rác sinh hoạt",
        "Đề nghị bổ sung thùng rác công cộng tại {place}",
        "Hỏi về chính sách hỗ trợ sau sáp nhập phường",
    ),
}

FEEDBACK_UNITS: dict[str, tuple[str, ...]] = {
    "environment": ("UBND {ward}", "Công ty CP Môi trường và Công trình đô thị Huế", "Sở Nông nghiệp và Môi trường"),
    "traffic": ("Công an {ward}", "Sở Xây dựng", "Phòng Cảnh sát giao thông"),
    "urban_order": ("UBND {ward}", "Công an {ward}"),
    "infrastructure": ("UBND {ward}", "Sở Xây dựng", "Công ty CP Cấp nước Huế", "Công ty Điện lực Huế"),
    "public_services": ("UBND {ward}", "Trung tâm Phục vụ hành chính công"),
    "security": ("Công an {ward}",),
    "health": ("Trạm Y tế {ward}", "Sở Y tế", "Trung tâm Kiểm soát bệnh tật"),
    "other": ("UBND {ward}", "Văn phòng UBND thành phố"),
}

INCIDENT_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "accident": (
        "Va chạm giữa xe máy và ô tô trên {road}",
        "Tai nạn liên hoàn giữa ba xe máy trên {road}",
        "Xe máy tự ngã, một người bị thương trên {road}",
        "Ô tô con va chạm xe tải trên {road}",
    ),
    "breakdown": (
        "Xe tải chết máy giữa làn trên {road}",
        "Xe khách hỏng hóc, chiếm một làn trên {road}",
        "Ô tô con nổ lốp trên {road}",
    ),
    "flooding": (
        "Ngập sâu 30-50 cm trên {road}",
        "Nước tràn qua mặt đường, hạn chế lưu thông trên {road}",
        "Ngập cục bộ sau mưa lớn trên {road}",
    ),
}
