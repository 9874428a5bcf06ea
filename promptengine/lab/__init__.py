"""The embedded world as a laboratory: the studies that check it shows the field's phenomena."""
