// Plotly locales for the interface languages: Vietnamese ("vi") and the test-only pseudo-language
// ("xx", Vietnamese formats with the modebar texts wrapped in ⟦…⟧). Each graph picks one through its
// config ({locale: ...}, see layouts/theme.graph_config). Month and day names follow plotly.js's own
// vi locale (MIT); numbers use 1.234,5. plotly.js loads after this file (Dash loads it on demand), so
// the locales wait in window.PlotlyLocales, which plotly.js registers when it starts.
(function () {
  const vi = {
    moduleType: "locale",
    name: "vi",
    dictionary: {
      "Autoscale": "Tự động co giãn",
      "Box Select": "Chọn vùng chữ nhật",
      "Click to enter Colorscale title": "Nhấn để nhập tiêu đề thang màu",
      "Compare data on hover": "So sánh số liệu khi di chuột",
      "Double-click to zoom back out": "Nhấn đúp để thu nhỏ lại",
      "Download plot": "Tải biểu đồ",
      "Download plot as a PNG": "Tải biểu đồ (PNG)",
      "Download plot as a png": "Tải biểu đồ (PNG)",
      "Lasso Select": "Chọn vùng tự do",
      "Pan": "Kéo",
      "Reset axes": "Đặt lại trục",
      "Reset view": "Đặt lại khung nhìn",
      "Show closest data on hover": "Hiện số liệu gần nhất khi di chuột",
      "Snapshot succeeded": "Đã chụp biểu đồ",
      "Taking snapshot - this may take a few seconds": "Đang chụp biểu đồ, vui lòng chờ",
      "Toggle Spike Lines": "Bật/tắt đường gióng",
      "Zoom": "Phóng to vùng chọn",
      "Zoom in": "Phóng to",
      "Zoom out": "Thu nhỏ",
      "Produced with Plotly.js": "Vẽ bằng Plotly.js",
    },
    format: {
      days: ["Chủ Nhật", "Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy"],
      shortDays: ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
      months: [
        "Tháng Một", "Tháng Hai", "Tháng Ba", "Tháng Tư", "Tháng Năm", "Tháng Sáu",
        "Tháng Bảy", "Tháng Tám", "Tháng Chín", "Tháng Mười", "Tháng Mười Một", "Tháng Mười Hai",
      ],
      shortMonths: ["Th1", "Th2", "Th3", "Th4", "Th5", "Th6", "Th7", "Th8", "Th9", "Th10", "Th11", "Th12"],
      date: "%d/%m/%Y",
      decimal: ",",
      thousands: ".",
    },
  };
  const wrap = function (text) { return "⟦" + text + "⟧"; };
  const pseudoDictionary = {};
  Object.keys(vi.dictionary).forEach(function (key) { pseudoDictionary[key] = wrap(vi.dictionary[key]); });
  const xx = { moduleType: "locale", name: "xx", dictionary: pseudoDictionary, format: vi.format };
  if (typeof window.Plotly !== "undefined" && window.Plotly.register) {
    window.Plotly.register([vi, xx]);
  } else {
    window.PlotlyLocales = (window.PlotlyLocales || []).concat([vi, xx]);
  }
})();
