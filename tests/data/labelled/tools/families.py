# Same story under two keys -> one event key.
SAME = {
    "2023-03-japan-chip-tool-export-curbs": "2023-03-japan-chip-tool-export-controls",
    "2025-02-singapore-server-fraud-nvidia-diversion": "2025-02-singapore-nvidia-server-fraud-case",
    "2018-12-china-hitech-researchers-told-avoid-us-travel": "2018-12-china-hitech-researchers-avoid-us-travel",
}
# Related events (a rule's draft and final form, a programme's cohorts, one prosecutor's series of raids, a
# follow-up of an event already in the set) -> a family, kept on one side of the split.
FAMILY_PREFIX = {
    "roscosmos": ["2011-12-roscosmos", "2016-01-roscosmos", "2019-06-roscosmos", "2019-10-roscosmos",
                  "2022-03-roscosmos"],
    "taiwan-core-tech-travel": ["2022-02-taiwan-cabinet-approves-core-tech", "2021-07-taiwan-core-tech", "2022-12-taiwan-core-tech", "2023-04-taiwan-core-tech",
                                "2024-07-ntu-core-tech", "2025-11-taiwan-nstc"],
    "korea-chip-engineer-travel": ["2022-02-south-korea-chip-engineer", "2022-korea-strategic-industries",
                                   "2024-03-korea-chip-experts"],
    "texas-china-travel": ["2024-11-texas-abbott", "2025-09-texas-am"],
    "china-academic-travel-rules": ["2014-06-scholars-five-day", "2015-03-cppcc-members-academic",
                                    "2016-03-yuan-yaxiang", "2018-07-beijing-lecturer", "2021-03-cppcc-proposal-relax",
                                    "2024-03-yuan-yaxiang"],
    "russia-scientists-travel": ["2022-03-russia-academics-avoid", "2026-01-russia-scientists-clearance"],
    "soviet-russia-secrecy-exit": ["1988-soviet-scientists", "1993-05-russia-scientists-denied"],
    "hu-zhicheng": ["2011-09-hu-zhicheng", "2013-06-hu-zhicheng"],
    "taiwan-poaching-probes": ["2021-03-taiwan-raids", "2022-03-taiwan-raids", "2022-04-taiwan-probes",
                               "2022-05-taiwan-raids", "2024-09-taiwan-probes", "2025-03-taiwan-probes",
                               "2025-08-taiwan-probes"],
    "huawei-genius-youth": ["2020-07-huawei-genius-youth", "2022-01-huawei-genius-youth", "2023-03-huawei-genius-youth",
                            "2023-05-huawei-genius-youth"],
    "korea-chip-poaching": ["2018-12-china-lures-korean", "2020-09-chinese-chipmakers-recruit-samsung",
                            "2023-05-ft-china-poaches-korean"],
    "china-talent-programmes": ["2018-10-thousand-talents", "2022-01-china-talent-programs", "2023-08-china-qiming"],
    "reverse-brain-drain": ["2025-12-scientists-relocate-to-china"],
    "filippo": ["2019-06-apple-hires-arm-chip-architect-filippo", "2022-01-microsoft-poaches-apple-chip-designer"],
    "schulman": ["2024-08-john-schulman", "2025-02-schulman"],
    "claude-code-leads": ["2025-07-claude-code", "2025-07-cursor-hires-claude-code"],
    "luo-fuli": ["2024-12-xiaomi-luo-fuli", "2025-11-luo-fuli"],
    "adept": ["2024-06-amazon-hires-adept", "2024-07-ftc-questions-amazon-adept"],
    "characterai": ["2024-08-google-rehires-characterai", "2024-09-google-paid-2-7b-for-shazeer"],
    "meta-raids": ["2025-06-meta-scale-ai", "2025-08-meta-msl-hires-return", "2025-10-andrew-tulloch"],
    "deepseek-2026-talent": ["2026-06-deepseek-"],
    "qwen-2026": ["2026-03-qwen-"],
    "ymtc-2022": ["2022-10-ymtc", "2022-12-ymtc"],
    "huawei-fdpr": ["2020-02-huawei-foreign-direct", "2020-08-huawei-fdpr"],
    "smic-2020": ["2020-09-us-licence-requirement-smic", "2020-12-smic-entity-list"],
    "gallium-2023": ["2023-07-china-gallium", "2023-09-china-gallium"],
    "graphite-2023": ["2023-10-china-graphite", "2023-12-china-graphite"],
    "lithium-tech": ["2025-01-china-proposes-lithium", "2025-07-china-battery-cathode"],
    "nexperia": ["2025-10-china-nexperia", "2025-11-china-eases-nexperia"],
    "china-control-list-us": ["2025-01-china-control-list-28", "2025-04-china-control-list-12"],
    "china-japan-2026": ["2026-01-china-dual-use-export-ban-japan", "2026-02-china-control-list-japanese"],
    "affiliates-rule": ["2025-09-bis-affiliates", "2025-10-us-suspends-affiliates"],
    "veu-revocations": ["2025-08-us-revokes-veu", "2025-09-us-revokes-veu"],
    "eda-licence": ["2025-05-us-eda", "2025-07-us-lifts-eda"],
    "gulf-chip-licences": ["2025-10-nvidia-uae", "2025-11-us-approves-chip-exports-g42"],
    "advanced-computing-2022": ["2022-08-us-licence-nvidia-a100", "2022-10-bis-advanced-computing"],
    "entity-list": ["2023-10-bis-rules-update-a800", "2023-10-us-accelerates-nvidia-a800", "2025-09-entity-list-23"],
    "diffusion-rule": ["2025-05-bis-huawei-ascend", "2025-01-ai-diffusion-rule-published"],
    "tsmc-huawei": ["2025-04-tsmc-possible-1b"],
    "china-minerals": ["2025-05-rare-earth-prices-record", "2025-10-china-lithium-battery-graphite-anode"],
    "h20-revenue-share": ["2025-08-trump-open-to-scaled-back-blackwell", "2025-10-blackwell-china-trump-xi"],
}


def family(event):
    for fam, prefixes in FAMILY_PREFIX.items():
        if any(event.startswith(p) for p in prefixes):
            return fam
    return event
