"""Events the visits service publishes: contacts made and due, leads a teller identified,
complaints, enquiries, appointments, surveys and marketing events.

Keyed by the customer id where there is one, so one customer's events stay in order.
"""

from crmkit.events import EventSpec

STREAM = "visits"

VISIT_RECORDED = EventSpec(
    "visit.recorded", 1, STREAM, "A contact with a customer was recorded (客户经理拜访记录)"
)
FOLLOWUP_DUE = EventSpec(
    "followup.due",
    1,
    STREAM,
    "A customer's next contact is due (by the plan, after a sale, a risk flag or an event), or a "
    "holiday greeting is to be sent: a reminder for its manager",
)
LEAD_IDENTIFIED = EventSpec(
    "lead.identified",
    1,
    STREAM,
    "A teller flagged a promising walk-in customer (柜员识别客户): a lead for the target list",
)
COMPLAINT_RECORDED = EventSpec("complaint.recorded", 1, STREAM, "A complaint 投诉 was recorded")
COMPLAINT_TRANSITIONED = EventSpec(
    "complaint.transitioned",
    1,
    STREAM,
    "A complaint moved to its next step (accepted, analysed, handled, feedback given)",
)
COMPLAINT_ESCALATED = EventSpec(
    "complaint.escalated",
    1,
    STREAM,
    "A complaint went to the branch head: a step was late, or the customer is high-tier",
)
COMPLAINT_CLOSED = EventSpec(
    "complaint.closed", 1, STREAM, "A complaint was closed with its outcome, cause and fix"
)
ENQUIRY_RECORDED = EventSpec(
    "enquiry.recorded",
    1,
    STREAM,
    "A customer's enquiry 咨询 was logged, to be answered by a deadline",
)
ENQUIRY_ANSWERED = EventSpec("enquiry.answered", 1, STREAM, "A customer's enquiry was answered")
APPOINTMENT_BOOKED = EventSpec(
    "appointment.booked", 1, STREAM, "An appointment 预约 was booked for a customer"
)
SURVEY_STARTED = EventSpec(
    "survey.started", 1, STREAM, "A satisfaction survey 满意度调查 drew its sample and started"
)
SURVEY_RESPONDED = EventSpec(
    "survey.responded", 1, STREAM, "A sampled customer's survey response was recorded and scored"
)
MARKETING_EVENT_INVITED = EventSpec(
    "marketing_event.invited",
    1,
    STREAM,
    "A customer was invited to a marketing event 营销活动 (the notify service sends it)",
)

PUBLISHED: tuple[EventSpec, ...] = (
    VISIT_RECORDED,
    FOLLOWUP_DUE,
    LEAD_IDENTIFIED,
    COMPLAINT_RECORDED,
    COMPLAINT_TRANSITIONED,
    COMPLAINT_ESCALATED,
    COMPLAINT_CLOSED,
    ENQUIRY_RECORDED,
    ENQUIRY_ANSWERED,
    APPOINTMENT_BOOKED,
    SURVEY_STARTED,
    SURVEY_RESPONDED,
    MARKETING_EVENT_INVITED,
)
