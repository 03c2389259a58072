"""Personal data of a customer record: validated, encrypted at rest, indexed blind, masked out.

Identity is one customer: the blind index of the kind's identity (the resident id number for
people and farm households, the unified social credit code for businesses and institutions) is
unique. The masked forms are stored beside the ciphertext so responses never need to decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from crmkit import identity
from crmkit.crypto import FieldCipher
from services.customer.models import Contact, Customer

PEOPLE = frozenset({"individual", "farm_household"})
BUSINESSES = frozenset({"individual_business", "corporate", "institution"})

_ID_PURPOSE = "resident_id"
_CREDIT_PURPOSE = "credit_code"
_PHONE_PURPOSE = "mobile"
_ID_CONTEXT = "customers.id_number"
_OPERATOR_CONTEXT = "customers.operator_id"
_PHONE_CONTEXT = "customers.phone"
CONTACT_PHONE_CONTEXT = "customer_contacts.phone"


@dataclass
class FieldErrors:
    """Errors found while validating a request, reported together (field and reason each)."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, field_name: str, reason: str) -> None:
        self.items.append({"field": field_name, "reason": reason})

    def has(self, field_name: str) -> bool:
        return any(item["field"] == field_name for item in self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def identity_index(
    cipher: FieldCipher, kind: str, id_number: str | None, credit_code: str | None
) -> str | None:
    """The unique identity key of a customer of ``kind`` (None while a prospect has none)."""
    if kind in PEOPLE and id_number:
        return cipher.blind_index(id_number, purpose=_ID_PURPOSE)
    if kind in BUSINESSES and credit_code:
        return cipher.blind_index(credit_code, purpose=_CREDIT_PURPOSE)
    return None


def phone_index(cipher: FieldCipher, phone: str) -> str:
    return cipher.blind_index(phone, purpose=_PHONE_PURPOSE)


def parse_resident_id(
    value: str, field_name: str, errors: FieldErrors, today: date
) -> identity.ResidentId | None:
    try:
        return identity.validate_resident_id(value, today=today)
    except identity.IdentityError as exc:
        errors.add(field_name, str(exc))
        return None


def parse_credit_code(value: str, field_name: str, errors: FieldErrors) -> str | None:
    try:
        return identity.validate_credit_code(value)
    except identity.IdentityError as exc:
        errors.add(field_name, str(exc))
        return None


def parse_mobile(value: str, field_name: str, errors: FieldErrors) -> str | None:
    try:
        return identity.normalize_mobile(value)
    except identity.IdentityError as exc:
        errors.add(field_name, str(exc))
        return None


def store_resident_id(customer: Customer, cipher: FieldCipher, rid: identity.ResidentId) -> None:
    customer.id_number_enc = cipher.encrypt(rid.number, context=_ID_CONTEXT)
    customer.id_number_masked = identity.mask_resident_id(rid.number)
    customer.birth_date = rid.birth_date
    customer.sex = rid.sex


def operator_index(cipher: FieldCipher, rid: identity.ResidentId) -> str:
    """The blind index of an individual business's operator (that of a resident id)."""
    return cipher.blind_index(rid.number, purpose=_ID_PURPOSE)


def store_operator_id(customer: Customer, cipher: FieldCipher, rid: identity.ResidentId) -> None:
    customer.operator_id_enc = cipher.encrypt(rid.number, context=_OPERATOR_CONTEXT)
    customer.operator_id_masked = identity.mask_resident_id(rid.number)
    customer.operator_id_index = operator_index(cipher, rid)


def store_phone(customer: Customer, cipher: FieldCipher, phone: str | None) -> None:
    """Keep the customer's mobile number; without one the customer is lost-contact 失联."""
    if phone is None:
        customer.phone_enc = customer.phone_masked = customer.phone_index = None
        customer.lost_contact = True
        return
    customer.phone_enc = cipher.encrypt(phone, context=_PHONE_CONTEXT)
    customer.phone_masked = identity.mask_phone(phone)
    customer.phone_index = phone_index(cipher, phone)
    customer.lost_contact = False


def encrypt_contact_phone(cipher: FieldCipher, phone: str) -> tuple[str, str]:
    return cipher.encrypt(phone, context=CONTACT_PHONE_CONTEXT), identity.mask_phone(phone)


def reveal_id_number(customer: Customer, cipher: FieldCipher) -> str | None:
    if customer.id_number_enc is None:
        return None
    return cipher.decrypt(customer.id_number_enc, context=_ID_CONTEXT)


def reveal_operator_id(customer: Customer, cipher: FieldCipher) -> str | None:
    if customer.operator_id_enc is None:
        return None
    return cipher.decrypt(customer.operator_id_enc, context=_OPERATOR_CONTEXT)


def reveal_phone(customer: Customer, cipher: FieldCipher) -> str | None:
    if customer.phone_enc is None:
        return None
    return cipher.decrypt(customer.phone_enc, context=_PHONE_CONTEXT)


def reveal_contact_phone(contact: Contact, cipher: FieldCipher) -> str | None:
    if contact.phone_enc is None:
        return None
    return cipher.decrypt(contact.phone_enc, context=CONTACT_PHONE_CONTEXT)


def erase_personal_fields(customer: Customer) -> None:
    """Remove what identifies the person; classification and figures stay, anonymous."""
    customer.name = "(erased)"
    customer.name_key = ""
    customer.name_stem = ""
    customer.identity_index = None
    customer.id_number_enc = customer.id_number_masked = None
    customer.credit_code = None
    customer.operator_id_enc = customer.operator_id_masked = customer.operator_id_index = None
    customer.birth_date = None
    customer.sex = None
    customer.phone_enc = customer.phone_masked = customer.phone_index = None
    customer.lost_contact = True
    customer.addresses = []
    customer.profile = {}
    customer.archive_number = None
    customer.core_customer_no = None
