"""Write a demo DataFrame the way Chinese Windows tools do: GB18030 bytes, Chinese headers, CRLF."""

import os

import pandas as pd

# Chinese headers for the columns of every demo generator; unknown columns keep their name.
COLUMN_NAMES_ZH = {
    # quality_inspections
    "inspection_id": "检验编号",
    "inspected_at": "检验时间",
    "line": "产线",
    "shift": "班次",
    "operator": "操作员",
    "material_batch": "物料批次",
    "temperature": "温度",
    "humidity": "湿度",
    "pressure": "压力",
    "line_speed": "线速度",
    "result": "结果",
    # maintenance_sensors
    "timestamp": "时间",
    "machine_id": "设备编号",
    "vibration": "振动",
    "current": "电流",
    "rpm": "转速",
    "status": "状态",
    "failure_within_24h": "24小时内故障",
    # supply_demand
    "date": "日期",
    "product_id": "产品编号",
    "product_name": "产品名称",
    "category": "类别",
    "price": "价格",
    "promotion": "促销",
    "holiday": "节假日",
    "stockout": "缺货",
    "units_sold": "销量",
    # service_tickets
    "ticket_id": "工单编号",
    "created_at": "创建时间",
    "channel": "渠道",
    "customer_id": "客户编号",
    "product": "产品",
    "language": "语言",
    "text": "内容",
    "priority": "优先级",
    "resolution_hours": "处理时长",
}

# Values a Chinese export would show in Chinese (used when translate_values=True).
VALUE_NAMES_ZH = {
    "result": {"pass": "合格", "fail": "不合格"},
    "shift": {"morning": "早班", "afternoon": "中班", "night": "夜班"},
    "status": {"running": "运行", "idle": "空闲", "failure": "故障", "maintenance": "维修"},
    "priority": {"low": "低", "medium": "中", "high": "高", "urgent": "紧急"},
    "channel": {"phone": "电话", "email": "邮件", "web": "网站", "wechat": "微信"},
}


def write_gbk_csv(
    frame: pd.DataFrame,
    target: str | os.PathLike,
    *,
    headers: dict[str, str] | None = None,
    translate_values: bool = True,
    encoding: str = "gb18030",
    date_format: str = "%Y/%m/%d %H:%M:%S",
) -> list[str]:
    """Write `frame` as a CSV in `encoding` (GB18030 by default, a superset of GBK) with Chinese headers.

    `headers` maps column names to headers (default: COLUMN_NAMES_ZH); with `translate_values`,
    known categorical values become Chinese (合格/不合格, 早班…). Timestamps use `date_format`
    (slashes, as Excel on a Chinese Windows writes them; `%Y/%m/%d` for a column of whole days),
    lines end with CRLF, no index column.
    Returns the headers written, in order.
    """
    names = COLUMN_NAMES_ZH if headers is None else headers
    out = frame.copy()
    if translate_values:
        for column, mapping in VALUE_NAMES_ZH.items():
            if column in out.columns:
                out[column] = out[column].map(lambda v, m=mapping: m.get(v, v))
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            values = out[column]
            whole_days = bool((values.dropna() == values.dropna().dt.normalize()).all())
            out[column] = values.dt.strftime("%Y/%m/%d" if whole_days else date_format)
    out.columns = [names.get(c, c) for c in out.columns]
    if len(set(out.columns)) != len(out.columns):
        raise ValueError("the header mapping makes two columns share a name")
    out.to_csv(target, index=False, encoding=encoding, lineterminator="\r\n")
    return list(out.columns)
