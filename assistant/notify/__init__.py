"""Notifications: an SQLite outbox, quiet hours, and delivery to SSE, webhook, ntfy and the desktop."""

from assistant.notify.models import Notification, NotificationStatus
from assistant.notify.service import DeliveryReport, Notifier, build_notifier

__all__ = ["DeliveryReport", "Notification", "NotificationStatus", "Notifier", "build_notifier"]
